"""A pickled LinjaxClassifier holds its compact model (issue 23 item 4).

Fitted on 6 documents it pickled to 16.8 MB (W [2^20, C] and the
featuriser's 2^20 document frequencies, nearly all zeros). Now it is about
the size of the same model saved by `linjax.saved_model.save` (the non-zero
rows of W, b and the featuriser's state), and pickle, joblib, deepcopy and
clone give back an estimator that predicts bit for bit the same.
"""

import copy
import io
import pathlib
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from linjax import saved_model
from linjax.estimator import LinjaxClassifier
from linjax.estimator_state import COMPACT

SIX = (['the cat sat on the mat', 'dogs chase the cat', 'a stock market crash',
        'shares fell sharply today', 'my cat purrs on the mat',
        'bond yields rose today'],
       ['pets', 'pets', 'money', 'money', 'pets', 'money'])


def _corpus(n, seed=0):
  rng = np.random.default_rng(seed)
  words = {'pets': 'cat dog mat purr paw fur bark'.split(),
           'money': 'stock bond share yield fund bank rate'.split(),
           'sport': 'goal team match coach ball score win'.split()}
  names = sorted(words)
  labels = [names[i % 3] for i in range(n)]
  texts = [' '.join(rng.choice(words[c] + 'the a of on'.split(), 8))
           for c in labels]
  return texts, labels


def _saved_size(clf, folder: pathlib.Path) -> int:
  path = saved_model.save(folder / 'model', clf.params_, clf.featurizer_,
                          [str(c) for c in clf.classes_])
  return sum(f.stat().st_size for f in path.iterdir())


@pytest.mark.parametrize('n, kw', [(6, {}), (600, dict(min_df=1)),
                                   (600, dict(buckets=0, min_df=1))])
def test_pickle_is_about_the_compact_saved_model(tmp_path, n, kw):
  texts, labels = SIX if n == 6 else _corpus(n)
  clf = LinjaxClassifier(**kw).fit(texts, labels)
  raw = pickle.dumps(clf)
  saved = _saved_size(clf, tmp_path)
  # The saved model's manifest (version, digest, config) is the slack; the
  # dense W alone would be W.nbytes.
  assert len(raw) <= 1.1 * saved + 2048, (len(raw), saved)
  if clf.featurizer_.hashing:   # 2^20 rows of W, nearly all zero
    assert len(raw) < clf.params_.W.nbytes / 50
  buffer = io.BytesIO()
  joblib.dump(clf, buffer)
  assert len(buffer.getvalue()) <= 1.1 * saved + 4096


def _assert_same_model(twin, clf, X):
  np.testing.assert_array_equal(twin.params_.W, clf.params_.W)
  np.testing.assert_array_equal(twin.params_.b, clf.params_.b)
  np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
  np.testing.assert_array_equal(twin.predict(X), clf.predict(X))
  np.testing.assert_array_equal(twin.classes_, clf.classes_)


def test_round_trips_predict_identically():
  texts, labels = _corpus(300)
  clf = LinjaxClassifier().fit(texts, labels)
  new_texts, _ = _corpus(50, seed=1)
  for twin in (pickle.loads(pickle.dumps(clf)),
               joblib.load(_joblib_bytes(clf)), copy.deepcopy(clf)):
    assert COMPACT not in twin.__dict__
    _assert_same_model(twin, clf, new_texts)
    x, y = twin.featurizer_.transform(new_texts), clf.featurizer_.transform(
        new_texts)
    np.testing.assert_array_equal(x.ids, y.ids)
    np.testing.assert_array_equal(x.weights, y.weights)
    # The featuriser's whole state as a saved model keeps it.
    assert twin.featurizer_.to_dict() == clf.featurizer_.to_dict()
  # The pickled object itself is untouched (W still dense and in place).
  assert clf.params_.W.shape[0] == 2 ** 20
  assert clone(clf).get_params() == clf.get_params()
  # A fitted twin trains on: partial_fit continues from the same model.
  twin = pickle.loads(pickle.dumps(clf))
  twin.partial_fit(texts[:30], labels[:30])
  clf.partial_fit(texts[:30], labels[:30])
  _assert_same_model(twin, clf, new_texts)


def _joblib_bytes(obj):
  buffer = io.BytesIO()
  joblib.dump(obj, buffer)
  buffer.seek(0)
  return buffer


def test_numeric_and_multilabel_round_trips():
  rng = np.random.default_rng(0)
  X = rng.normal(size=(80, 5)) * [1.0, 100.0, 0.1, 5.0, 1.0]
  y = (X[:, 0] + X[:, 1] / 100 > 0).astype(int)
  clf = LinjaxClassifier().fit(X, y)
  twin = pickle.loads(pickle.dumps(clf))
  _assert_same_model(twin, clf, X)
  np.testing.assert_array_equal(twin.scaling_.scale, clf.scaling_.scale)
  assert twin.n_features_in_ == 5 and twin.featurizer_ is None
  Y = np.stack([y, 1 - y, (X[:, 2] > 0).astype(int)], axis=1)
  multi = LinjaxClassifier().fit(X, Y)
  twin = pickle.loads(pickle.dumps(multi))
  _assert_same_model(twin, multi, X)
  assert twin.multilabel_ and twin.predict(X).dtype == Y.dtype


def test_unfitted_and_older_pickles():
  unfitted = pickle.loads(pickle.dumps(LinjaxClassifier(epochs=3)))
  assert unfitted.epochs == 3 and not hasattr(unfitted, 'params_')
  # A state pickled before compact states (params_ dense) still loads.
  clf = LinjaxClassifier(min_steps=0).fit(*SIX)
  old = LinjaxClassifier.__new__(LinjaxClassifier)
  old.__setstate__(dict(clf.__dict__))
  _assert_same_model(old, clf, SIX[0])
