"""The runners' multi-label side: ``--config.train.loss=sigmoid``.

With the sigmoid loss a document has a set of labels (tags), maybe none:
``data.train``/``data.test`` are read with ``multi_label=True`` (fastText
lines with several ``__label__`` prefixes, TSV/CSV label fields split at
``data.label_separator``, JSONL label lists; ``data.allow_unlabeled`` reads
a line with no label as a document with no tags), the labels become a
multi-hot uint8 [N, C], and the splits are stratified by each document's
rarest label (`linjax.data.corpus.multilabel_split`). After training, the
threshold of the best validation micro-F1 (`tune_threshold`; 0.5 without a
validation split) decides which labels a document gets; it is saved with
the model (``extra.threshold``), and `experiments.predict`/`evaluate` use it
unless ``--threshold`` says otherwise.
"""

from __future__ import annotations

from absl import logging
import numpy as np

from linjax.cli import splits as splits_lib
from linjax.cli.splits import Splits

DEFAULT_THRESHOLD = 0.5
REPORT_KS = (1, 5)


def is_multilabel(config_or_options) -> bool:
  """Whether a config (``train.loss``) or `TrainOptions` asks for a
  multi-label loss (sigmoid: its label kind in linjax/core/losses.py)."""
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  train = getattr(config_or_options, 'train', config_or_options)
  try:
    return losses.get_loss(getattr(train, 'loss', 'softmax')).multi_label
  except losses.LossNotFound:
    return False   # the options' check names the flag


def read_options(data_config) -> dict:
  """``read_corpus`` keywords of a multi-label ``config.data``."""
  get = (data_config.get if hasattr(data_config, 'get')
         else lambda k, d: getattr(data_config, k, d))
  return dict(multi_label=True, label_separator=get('label_separator', ','),
              allow_unlabeled=bool(get('allow_unlabeled', False)))


def require_train_file(data_config) -> None:
  """DataError unless ``data.train`` names a corpus: the demo corpus has
  one label per document."""
  if not data_config.train:
    from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
    raise data.DataError("train.loss='sigmoid' (multi-label) needs a "
                         'multi-label corpus in data.train; the demo corpus '
                         'has one label per document.',
                         fix='set --config.data.train.')


def load_splits(config) -> Splits:
  """`run_data.load_splits` for multi-label data: multi-hot [N, C] labels.

  A test label unseen in training is dropped with a warning (fastText's
  ``test`` does the same); the test documents stay.
  """
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  dc, seed = config.data, int(config.train.seed)
  require_train_file(dc)
  kwargs = read_options(dc)
  corpus = data.read_corpus(dc.train, dc.format, dc.text_column,
                            dc.label_column, dc.lenient, dc.max_per_class,
                            seed, **kwargs)
  label_map = data.LabelMap.fit_multi(corpus.labels)
  if label_map.num_classes < 2:
    raise data.DataError(f'{label_map.num_classes} distinct label(s); '
                         'training needs at least two.', path=dc.train)
  Y = label_map.encode_multi(corpus.labels)
  texts = corpus.texts
  if dc.test:
    test = data.read_corpus(dc.test, dc.format, dc.text_column,
                            dc.label_column, dc.lenient, **kwargs)
    test = (test.texts, encode_test(label_map, test.labels, dc.test))
  else:
    test = None
  return splits_lib.carve_splits(texts, Y, test, dc, seed,
                               data.multilabel_split, label_map, dc.train)


def encode_test(label_map, label_sets, path) -> np.ndarray:
  """The test documents' multi-hot [N, C]; a label never seen in training
  is dropped with a warning (fastText's ``test`` does the same) and the
  documents stay."""
  unknown = label_map.unknown_labels(label_sets)
  if unknown:
    logging.warning('%s: %d label(s) never seen in training are ignored: '
                    '%s', path, len(unknown), ', '.join(
                        f'{k!r} ({n})' for k, n in list(unknown.items())[:10]))
  return label_map.encode_multi(label_sets, unknown='ignore')


def label_names(y, names) -> list:
  """Per document: its label name (int labels [N]) or tuple of names
  (multi-hot [N, C])."""
  y = np.asarray(y)
  if y.ndim == 2:
    return [tuple(names[c] for c in np.flatnonzero(row)) for row in y]
  return [names[i] for i in y]


def flat_label_names(y, names) -> list:
  """Every label occurrence's name (for the rare-class warning)."""
  y = np.asarray(y)
  if y.ndim == 2:
    _, cols = np.nonzero(y)
    return [names[c] for c in cols]
  return [names[i] for i in y]


def choose_threshold(params, val_x, val_y) -> float:
  """The threshold of the best micro-F1 on the validation split (0.5
  without one)."""
  if val_x is None or not val_x.num_docs:
    return DEFAULT_THRESHOLD
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  return threshold_of(scoring.predict_proba(params, val_x, loss='sigmoid'),
                      val_y)


def threshold_of(proba, val_y) -> float:
  """The threshold of the best micro-F1 of validation probabilities
  [N, C] against their multi-hot [N, C] (0.5 without documents)."""
  if not np.shape(proba)[0]:
    return DEFAULT_THRESHOLD
  from linjax.analysis import multilabel_metrics as mm  # pylint: disable=g-import-not-at-top
  threshold, _ = mm.tune_threshold(proba, val_y)
  return float(threshold)


def test_results(test_y, proba, names, threshold: float) -> dict:
  """results.json's test keys: the report, and test_accuracy = P@1,
  test_macro_f1 / test_micro_f1 at the threshold, P@k and R@k."""
  from linjax.analysis import multilabel_metrics as mm  # pylint: disable=g-import-not-at-top
  report = mm.multilabel_report(test_y, proba, threshold, REPORT_KS, names)
  out = dict(test_accuracy=report['p_at_1'],
             test_macro_f1=report['macro_f1'],
             test_micro_f1=report['micro_f1'], test_report=report)
  for k in REPORT_KS:
    out[f'test_p_at_{k}'] = report[f'p_at_{k}']
    out[f'test_r_at_{k}'] = report[f'r_at_{k}']
  return out


def saved_threshold(model) -> float:
  """The threshold a saved multi-label model was tuned to (0.5 if none)."""
  threshold = model.threshold
  return DEFAULT_THRESHOLD if threshold is None else threshold


def predicted_labels(proba: np.ndarray, names, threshold: float,
                     top_k: int) -> list:
  """Per row: [(label, probability)] of the labels scoring >= threshold,
  best first, at most top_k of them (0: all)."""
  from linjax.analysis import multilabel_metrics as mm  # pylint: disable=g-import-not-at-top
  ranked = mm.ranked_labels(proba, threshold, top_k or None)
  return [[(names[i], float(row[i])) for i in ids]
          for row, ids in zip(proba, ranked)]
