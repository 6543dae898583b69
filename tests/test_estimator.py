"""The scikit-learn style estimator over raw texts."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from experiments.config_check import ConfigError
from linjax.estimator import LinjaxClassifier

WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'.split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it'.split()


def _task(n=90, seed=0):
  """Each document: 3 class words among 5 shared filler words."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  texts, labels = [], []
  for i in range(n):
    label = names[i % 3]
    toks = list(rng.choice(WORDS[label], 3)) + list(rng.choice(COMMON, 5))
    rng.shuffle(toks)
    texts.append(' '.join(toks))
    labels.append(label)
  return texts, np.array(labels)


FAST = dict(epochs=5, buckets=0, ngrams=1, checkpoint_every=0,
            gradcheck=False, learning_rate=1.0)


def test_fit_predict_score():
  texts, y = _task()
  clf = LinjaxClassifier(**FAST).fit(texts, y)
  np.testing.assert_array_equal(clf.classes_, ['health', 'sports', 'tech'])
  proba = clf.predict_proba(['doctor drug nurse', 'goal team ball'])
  assert proba.shape == (2, 3)
  np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
  assert list(clf.predict(['doctor drug nurse', 'goal team ball',
                           'chip cloud app'])) == ['health', 'sports', 'tech']
  test_texts, test_y = _task(seed=1)
  assert clf.score(test_texts, test_y) > 0.9
  assert clf.config_.optimizer.learning_rate == 1.0
  assert clf.config_.features.buckets == 0


def test_integer_labels_and_params():
  texts, y = _task(n=60)
  y_int = np.array([{'health': 7, 'sports': 3, 'tech': 5}[v] for v in y])
  clf = LinjaxClassifier(**FAST).fit(texts, y_int)
  np.testing.assert_array_equal(clf.classes_, [3, 5, 7])
  assert set(clf.predict(texts[:6])) <= {3, 5, 7}
  params = clf.get_params()
  assert params['epochs'] == 5 and params['config'] is None
  clf.set_params(optimizer__learning_rate=0.5)
  assert clf.get_params()['optimizer__learning_rate'] == 0.5
  twin = clone(clf)
  assert twin.get_params() == clf.get_params()
  assert not hasattr(twin, 'params_')


def test_cross_val_score():
  texts, y = _task(n=90)
  scores = cross_val_score(LinjaxClassifier(**FAST), texts, y, cv=3)
  assert scores.shape == (3,)
  assert scores.min() > 0.85


def test_bad_parameters():
  texts, y = _task(n=30)
  with pytest.raises(ValueError, match="unknown parameter 'epoch'"):
    LinjaxClassifier(epoch=3).fit(texts, y)
  with pytest.raises(ConfigError, match=r'^optimizer\.learning_rate must be '
                     r'> 0, got -1'):
    LinjaxClassifier(learning_rate=-1.0).fit(texts, y)
  with pytest.raises(ValueError, match='one class'):
    LinjaxClassifier(**FAST).fit(texts, ['a'] * len(texts))
  with pytest.raises(ValueError, match='not a config key'):
    LinjaxClassifier(fit=1)


def test_importable_without_sklearn():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  script = ('import sys; sys.modules["sklearn"] = None\n'
            'from linjax.estimator import LinjaxClassifier\n'
            'c = LinjaxClassifier(epochs=2).set_params(ngrams=1)\n'
            'assert LinjaxClassifier.__mro__[1] is object\n'
            'print(sorted(c.get_params().items()))\n')
  out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                       text=True, timeout=120, check=True)
  assert out.stdout.strip() == "[('config', None), ('epochs', 2), ('ngrams', 1)]"
