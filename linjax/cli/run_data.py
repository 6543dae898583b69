"""A training run's data: the splits, and the program compiled meanwhile.

`load_splits(config)` reads ``data.train`` (a file, a folder, a glob of
files, or the demo corpus) and carves the stratified validation and test
splits; `start_precompile` starts compiling the training program before
featurisation. Both are also
reachable as ``linjax.cli.train.load_splits``/``start_precompile`` (the
other runners and benchmarks/ use them from there).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import NamedTuple

import numpy as np

from linjax.cli import config_check
from linjax.cli.splits import carve_indices  # pylint: disable=unused-import
from linjax.cli.splits import carve_splits
from linjax.cli.splits import Splits


def _read(path: str, dc, max_per_class: int = 0, seed: int = 0):
  """`read_corpus` of ``path``, or of a glob's files in sorted order."""
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.data import shards  # pylint: disable=g-import-not-at-top
  if not shards.is_glob(path):
    return data.read_corpus(path, dc.format, dc.text_column, dc.label_column,
                            dc.lenient, max_per_class, seed)
  return data.cap_per_class(shards.read_file_shard(
      path, dc.format, 0, 1, text_column=dc.text_column,
      label_column=dc.label_column, lenient=dc.lenient), max_per_class, seed,
                            path)


def load_splits(config) -> Splits:
  """Reads the data named by ``config.data`` and splits it (stratified).

  Raises:
    DataError: for unreadable files, bad lines, fewer than two classes, or a
      test label that training never saw.
  """
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  if multilabel_run.is_multilabel(config):
    return multilabel_run.load_splits(config)
  dc, seed = config.data, int(config.train.seed)
  if dc.train:
    corpus = _read(dc.train, dc, dc.max_per_class, seed)
    source = dc.train
  else:
    from linjax.data import demo  # pylint: disable=g-import-not-at-top
    corpus = demo.demo_corpus(max_per_class=dc.max_per_class or None,
                              seed=seed)
    source = 'demo corpus'
  if not corpus.texts:
    raise data.DataError('no documents.', path=source)
  label_map = data.LabelMap.fit(corpus.labels)
  if label_map.num_classes < 2:
    raise data.DataError(f'only one class ({label_map.names[0]!r}); a '
                         f'classifier needs at least two.', path=source)
  y = label_map.encode(corpus.labels, corpus.sources)
  texts = corpus.texts
  test = None
  if dc.test:
    corpus = _read(dc.test, dc)
    test = (corpus.texts, label_map.encode(corpus.labels, corpus.sources))
  return carve_splits(texts, y, test, dc, seed, data.stratified_split,
                      label_map, source)


def start_precompile(options: config_check.RunOptions, texts,
                     num_classes: int, sample: int = 16):
  """Starts compiling the training program before featurisation.

  Only in hashing mode (F = ``features.buckets`` is known now; a vocabulary's
  size is not). `fit` raises the token budget to the longest document's
  number of features; that count is estimated by featurising the ``sample``
  longest texts (by characters), so that the program compiled in the
  background is the one `fit` needs. A wrong guess costs a normal compile.

  Args:
    options: the run's options.
    texts: the training texts (a list of str).
    num_classes: C.
    sample: texts featurised for the estimate.

  Returns:
    `linjax.engine.training.precompile`'s future, or None in vocabulary
    mode.
  """
  if options.features.buckets <= 0 or not texts:
    return None
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
  longest = np.argsort(lengths)[-sample:]
  # Count every feature: min_df would drop most of a 16-text sample's.
  counting = dataclasses.replace(options.features, weighting='tf',
                                 normalize='none', min_df=1)
  x = Featurizer.from_options(counting).fit_transform(
      [texts[i] for i in longest])
  # train.docs_per_step sets T from the mean document's features: estimate
  # it as the sample's features per character times the mean characters.
  per_char = x.nnz / max(int(lengths[longest].sum()), 1)
  return training.precompile(options.features.buckets, num_classes,
                             optimizer=options.optimizer,
                             training=options.training,
                             max_doc_features=int(x.row_lengths().max()),
                             mean_doc_features=per_char * lengths.mean())


class ValidationRun(NamedTuple):
  """A runner that chooses on the validation split: its data, featurised."""

  options: config_check.RunOptions
  splits: Splits
  featurizer: object
  train_x: object            # CsrFeatures of splits.train_texts
  val_x: object              # CsrFeatures of splits.val_texts
  featurize_seconds: float


def enable_compile_cache(config) -> None:
  """JAX's persistent compilation cache as ``train.compile_cache`` says
  ('auto': the XDG cache folder; empty: off; linjax/engine/compile_cache.py)."""
  if config.train.compile_cache:
    from linjax.engine import chunk_program  # pylint: disable=g-import-not-at-top
    chunk_program.enable_compile_cache(
        os.path.expanduser(config.train.compile_cache))


def test_scores(params, featurizer, splits: Splits,
                threshold: float | None = None) -> dict:
  """The chosen model's test metrics for a runner that chose on validation
  ({} without a test split): test_accuracy and test_macro_f1; multi-label
  (``threshold`` given) P@1 as test_accuracy, micro- and macro-F1 at the
  threshold, P@k and R@k (`multilabel_run.test_results`, less the report)."""
  if not splits.test_texts:
    return {}
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  names = splits.label_map.names
  test_x = featurizer.transform(splits.test_texts)
  if threshold is not None:
    proba = scoring.predict_proba(params, test_x, loss='sigmoid')
    report = multilabel_run.test_results(splits.test_y, proba, names,
                                         threshold)
    return {k: v for k, v in report.items() if k != 'test_report'}
  proba = scoring.predict_proba(params, test_x)
  report = metrics.classification_report(splits.test_y, proba, names)
  return dict(test_accuracy=report['accuracy'],
              test_macro_f1=report['macro_f1'])


def featurise_for_validation(config, workdir: str,
                             purpose: str) -> ValidationRun:
  """Validates ``config`` (which must carve a validation split), creates
  ``workdir``, reads the data and featurises the train and validation splits.

  ``purpose`` names the runner in the error ('a sweep', 'autotune').
  """
  options = config_check.validate(config)
  if not config.data.val_fraction:
    raise config_check.ConfigError(
        f'--config.data.val_fraction must be > 0 for {purpose} (it chooses '
        f'on validation), got 0')
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  os.makedirs(workdir, exist_ok=True)
  enable_compile_cache(config)
  splits = load_splits(config)
  start = time.perf_counter()
  featurizer = Featurizer.from_options(options.features)
  from linjax.cli import refit  # pylint: disable=g-import-not-at-top
  if refit.applies(config, options, bool(splits.val_texts)) and (
      splits.pool_order is not None):
    # As `linjax train` featurises when it refits: the chosen config then
    # retrains the model chosen here, with the same validation metrics.
    pool = refit.featurise_pool(featurizer, splits)
    train_x, val_x = pool.train_x, pool.val_x
  else:
    train_x = featurizer.fit_transform(splits.train_texts)
    val_x = featurizer.transform(splits.val_texts)
  return ValidationRun(options, splits, featurizer, train_x, val_x,
                       time.perf_counter() - start)
