"""Multi-label from Python, end to end: a tagged fastText file is read,
featurised, trained with the sigmoid loss, its threshold tuned on a
validation split, saved with its loss and threshold, loaded and applied."""

from pathlib import Path

import numpy as np

from linjax import saved_model
from linjax.analysis import multilabel_metrics as mm
from linjax.data import corpus
from linjax.engine import scoring
from linjax.engine import training
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.featurizer import Featurizer

TAGS = ('games', 'audio', 'net', 'devel')
WORDS = {'games': 'play level arcade puzzle', 'audio': 'sound music mp3 mixer',
         'net': 'http server network proxy', 'devel': 'compiler library '
         'debug header'}


def _write_corpus(path: Path, n: int, seed: int) -> Path:
  """Documents with 0-3 tags, each tag bringing some of its own words."""
  rng = np.random.default_rng(seed)
  lines = []
  for _ in range(n):
    tags = list(rng.choice(TAGS, rng.integers(0, 4), replace=False))
    words = [w for t in tags for w in rng.choice(WORDS[t].split(), 2)]
    words += ['the', 'tool', 'for', 'linux']
    lines.append(' '.join(f'__label__{t}' for t in tags) + ' ' +
                 ' '.join(rng.permutation(words)))
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  return path


def test_train_tune_save_load_predict(tmp_path):
  train_file = _write_corpus(tmp_path / 'train.txt', 400, seed=0)
  test_file = _write_corpus(tmp_path / 'test.txt', 100, seed=1)
  train = corpus.read_corpus(train_file, multi_label=True,
                             allow_unlabeled=True)
  test = corpus.read_corpus(test_file, multi_label=True, allow_unlabeled=True)
  assert () in train.labels            # untagged documents are kept
  labels = corpus.LabelMap.fit_multi(train.labels)
  assert labels.names == sorted(TAGS)
  Y = labels.encode_multi(train.labels)
  fit_idx, val_idx = corpus.multilabel_split(Y, 0.2, seed=0)
  texts = np.asarray(train.texts, dtype=object)

  featurizer = Featurizer(buckets=2**12, min_df=1, shape_ngrams=0)
  x_fit = featurizer.fit_transform(list(texts[fit_idx]))
  x_val = featurizer.transform(list(texts[val_idx]))
  options = dict(optimizer=OptimizerOptions(learning_rate=8.0),
                 training=TrainOptions(loss='sigmoid', epochs=6,
                                       batch_size=16, token_budget=256))
  result = training.fit(x_fit, Y[fit_idx], labels.num_classes,
                        val_x=x_val, val_y=Y[val_idx], **options)
  val_proba = scoring.predict_proba(result.params, x_val, loss='sigmoid')
  threshold, _ = mm.tune_threshold(val_proba, Y[val_idx])
  assert result.history[-1]['val_accuracy'] == mm.precision_recall_at_k(
      val_proba, Y[val_idx], 1)[0]

  model_dir = saved_model.save(tmp_path / 'model', result.params, featurizer,
                               labels, loss='sigmoid',
                               extra=dict(threshold=threshold))
  loaded = saved_model.load(model_dir)
  assert loaded.loss == 'sigmoid'
  assert loaded.meta['extra']['threshold'] == threshold
  proba = loaded.predict_proba(test.texts)
  np.testing.assert_allclose(
      proba, scoring.predict_proba(result.params,
                                   featurizer.transform(test.texts),
                                   loss='sigmoid'), rtol=1e-5, atol=1e-6)
  Y_test = labels.encode_multi(test.labels)
  predicted = labels.decode_multi(mm.predict_sets(proba, threshold))
  assert len(predicted) == len(test.texts)
  # The tags are easy: their own words give them away.
  assert mm.micro_f1(Y_test, mm.predict_sets(proba, threshold)) > 0.9
  assert mm.precision_recall_at_k(proba, Y_test, 1)[0] > 0.9
