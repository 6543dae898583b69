"""A run's splits: the carved train/validation/test texts and labels.

`carve_indices` is the one rule of every runner path (in memory, out of
core, one part per process); `carve_splits` applies it to a read corpus.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Splits(NamedTuple):
  """Texts and int32 labels of each split, and the label map.

  Multi-label runs (``train.loss='sigmoid'``, linjax/cli/multilabel_run.py)
  hold multi-hot uint8 [N, C] labels instead.

  ``val_*`` are empty lists/arrays when ``data.val_fraction`` is 0, and
  ``test_*`` when ``data.test_fraction`` is 0 and there is no ``data.test``.

  ``pool_order``: the training and validation documents in the order the
  corpus holds them, as positions into ``train_texts + val_texts`` (int64
  [N_train + N_val]); None where not known (one process's part).
  """

  train_texts: list
  train_y: np.ndarray
  val_texts: list
  val_y: np.ndarray
  test_texts: list
  test_y: np.ndarray
  label_map: object
  source: str
  pool_order: np.ndarray | None = None


def carve_indices(y: np.ndarray, dc, seed: int, split,
                  has_test_file: bool):
  """(train, validation, test) int64 indices into a corpus of labels ``y``:
  a test split of ``data.test_fraction`` unless there is a test file (then
  None), and a validation split of ``data.val_fraction`` of what remains.
  ``split(y, fraction, seed)`` -> (keep, held out) indices. The one rule
  of every runner path: in memory, out of core, one part per process."""
  test_idx = None
  if has_test_file:
    train_idx = np.arange(y.shape[0], dtype=np.int64)
  else:
    train_idx, test_idx = split(y, dc.test_fraction, seed)
  keep, val = split(y[train_idx], dc.val_fraction, seed + 1)
  return train_idx[keep], train_idx[val], test_idx


def carve_splits(texts, y, test, dc, seed: int, split, label_map,
                 source: str) -> Splits:
  """The train/validation/test `Splits` of a read corpus.

  ``test``: (texts, labels) of ``data.test``, or None to carve a test split
  of ``data.test_fraction``; the validation split of ``data.val_fraction``
  is carved from what remains. ``split(y, fraction, seed)`` -> (keep, held
  out) indices: stratified for single labels, by rarest label for
  multi-label.
  """
  train_idx, val_idx, test_idx = carve_indices(y, dc, seed, split,
                                               test is not None)
  if test is not None:
    test_texts, test_y = test
  else:
    test_texts = [texts[i] for i in test_idx]
    test_y = y[test_idx]
  return Splits(
      train_texts=[texts[i] for i in train_idx], train_y=y[train_idx],
      val_texts=[texts[i] for i in val_idx], val_y=y[val_idx],
      test_texts=test_texts, test_y=np.asarray(test_y, y.dtype),
      label_map=label_map, source=source,
      pool_order=np.argsort(np.concatenate([train_idx, val_idx]),
                            kind='stable'))
