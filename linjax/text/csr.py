"""Host-side compressed sparse rows: the flat layout of a featurised corpus.

A corpus of N documents whose bag-of-words has ``nnz`` non-zero entries in all
is stored as three numpy arrays (no padding, no JAX):

  indptr:  int64 [N + 1]   document n owns entries ``indptr[n]:indptr[n + 1]``
  ids:     int32 [nnz]     feature ids in [0, num_features)
  weights: float32 [nnz]   feature values (counts, TF-IDF, ...)

This is what the text pipeline (layer 1) produces and what the training engine
packs into fixed-shape batches. ``to_padded`` gives the dense-padded
``SparseFeatures`` layout of the public API when a caller wants it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CsrFeatures(NamedTuple):
  """A featurised corpus in compressed-sparse-row form (see module docstring)."""

  indptr: np.ndarray
  ids: np.ndarray
  weights: np.ndarray
  num_features: int

  @property
  def num_docs(self) -> int:
    return int(self.indptr.shape[0] - 1)

  @property
  def nnz(self) -> int:
    return int(self.indptr[-1])

  def row_lengths(self) -> np.ndarray:
    """int64 [N]: number of stored entries of each document."""
    return np.diff(self.indptr)

  def take(self, rows) -> 'CsrFeatures':
    """The documents ``rows`` (int array [M]), in that order."""
    rows = np.asarray(rows, dtype=np.int64)
    lengths = self.row_lengths()[rows]
    indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # Gather positions: for each output entry, its source position.
    starts = self.indptr[rows]
    pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return CsrFeatures(indptr, self.ids[pos], self.weights[pos],
                       self.num_features)

  def to_padded(self, max_len: int | None = None):
    """Padded (ids int32 [N, L], weights float32 [N, L]); padding has weight 0.

    L is ``max_len`` or the longest document. Entries past ``max_len`` raise,
    since silently truncating a document would change its features.
    """
    lengths = self.row_lengths()
    longest = int(lengths.max()) if lengths.size else 0
    length = longest if max_len is None else int(max_len)
    if longest > length:
      raise ValueError(f'to_padded: a document has {longest} entries but '
                       f'max_len={length}; raise max_len or leave it unset.')
    length = max(length, 1)
    n = self.num_docs
    ids = np.zeros((n, length), dtype=np.int32)
    weights = np.zeros((n, length), dtype=np.float32)
    row = np.repeat(np.arange(n), lengths)
    col = np.arange(self.nnz) - np.repeat(self.indptr[:-1], lengths)
    ids[row, col] = self.ids
    weights[row, col] = self.weights
    return ids, weights

  def to_dense(self) -> np.ndarray:
    """float32 [N, F] dense matrix (small corpora only: it is N x F)."""
    dense = np.zeros((self.num_docs, self.num_features), dtype=np.float32)
    row = np.repeat(np.arange(self.num_docs), self.row_lengths())
    np.add.at(dense, (row, self.ids), self.weights)
    return dense

  def validate(self, name: str = 'features') -> None:
    """Raises ValueError with a clear message if the arrays are inconsistent."""
    if self.indptr.ndim != 1 or self.indptr.shape[0] < 1:
      raise ValueError(f'{name}: indptr must be 1-D with N + 1 entries.')
    if self.indptr[0] != 0 or np.any(np.diff(self.indptr) < 0):
      raise ValueError(f'{name}: indptr must start at 0 and never decrease.')
    if self.ids.shape != self.weights.shape or self.ids.ndim != 1:
      raise ValueError(f'{name}: ids and weights must be 1-D of equal length.')
    if self.ids.shape[0] != self.indptr[-1]:
      raise ValueError(f'{name}: indptr[-1]={self.indptr[-1]} but there are '
                       f'{self.ids.shape[0]} entries.')
    if self.ids.size and (self.ids.min() < 0 or
                          self.ids.max() >= self.num_features):
      raise ValueError(f'{name}: feature ids must lie in [0, '
                       f'{self.num_features}); found {self.ids.min()}..'
                       f'{self.ids.max()}.')


def concatenate(parts) -> CsrFeatures:
  """The documents of several CsrFeatures (same F), one after another."""
  parts = list(parts)
  indptr = [np.zeros(1, np.int64)]
  offset = 0
  for x in parts:
    indptr.append(x.indptr[1:] + offset)
    offset += x.nnz
  return CsrFeatures(np.concatenate(indptr),
                     np.concatenate([x.ids for x in parts]),
                     np.concatenate([x.weights for x in parts]),
                     parts[0].num_features)


def from_rows(rows, num_features: int) -> CsrFeatures:
  """Builds a CsrFeatures from a list of (ids, weights) pairs, one per doc."""
  lengths = np.array([len(r[0]) for r in rows], dtype=np.int64)
  indptr = np.zeros(len(rows) + 1, dtype=np.int64)
  np.cumsum(lengths, out=indptr[1:])
  if rows:
    ids = np.concatenate([np.asarray(r[0], np.int32) for r in rows])
    weights = np.concatenate([np.asarray(r[1], np.float32) for r in rows])
  else:
    ids = np.zeros(0, np.int32)
    weights = np.zeros(0, np.float32)
  return CsrFeatures(indptr, ids.astype(np.int32), weights.astype(np.float32),
                     int(num_features))
