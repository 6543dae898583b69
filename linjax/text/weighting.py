"""Per-document feature counts and their weighting (tf, binary, TF-IDF, L2).

numpy only, no JAX. `count_features` (or `count_keys`) merges feature
occurrences into a `linjax.text.csr.CsrFeatures` of counts (N documents, F
features); `apply_weighting` drops the features under min_df and re-weights
the rest (tf | binary | tfidf | sublinear_tfidf, then optional L2
normalisation of each row) with `smooth_idf`, scikit-learn's smooth IDF, a
block of rows at a time on the text layer's threads. `prepare` makes a
weighting ready once (`Weighing`) for `weigh` (a corpus) or `weigh_rows`
(some of its rows) to apply many times.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linjax.text import csr
from linjax.text import worker_pool

WEIGHTINGS = ('tf', 'binary', 'tfidf', 'sublinear_tfidf')
NORMALIZATIONS = ('l2', 'none')


def smooth_idf(df: np.ndarray, num_docs: int) -> np.ndarray:
  """float64 [F] ``ln((1 + N) / (1 + df)) + 1`` (scikit-learn's smooth idf)."""
  return np.log((1.0 + num_docs) / (1.0 + df)) + 1.0


def count_features(doc: np.ndarray, ids: np.ndarray, num_docs: int,
                   num_features: int) -> csr.CsrFeatures:
  """Merges feature occurrences into per-document counts.

  Args:
    doc: int [M] document of each occurrence.
    ids: int [M] feature id of each occurrence.
    num_docs: N.
    num_features: F.

  Returns:
    CsrFeatures with ids unique and ascending within each row, weights the
    counts; a document without occurrences is an empty row.
  """
  return count_keys(doc.astype(np.int64) * num_features + ids, num_docs,
                    num_features)


def count_keys(key: np.ndarray, num_docs: int,
               num_features: int) -> csr.CsrFeatures:
  """`count_features` of occurrences given as keys ``doc * F + id``.

  Args:
    key: int64 (or uint32) [M] the occurrences' keys (sorted in place);
      keys of ``np.iinfo(dtype).max`` (n-grams across documents, see
      `linjax.text.hashed_counts.gram_keys`) are left out.
    num_docs: N.
    num_features: F.

  Returns:
    CsrFeatures of the counts, as `count_features`.
  """
  key.sort()
  if key.shape[0] and key[-1] == np.iinfo(key.dtype).max:
    key = key[:np.searchsorted(key, key[-1])]
  num = key.shape[0]
  new = np.empty(num, bool)
  new[:1] = True
  np.not_equal(key[1:], key[:-1], out=new[1:])
  first = np.flatnonzero(new)
  counts = np.empty(first.shape[0], np.float32)
  np.subtract(first[1:], first[:-1], out=counts[:-1], casting='unsafe')
  counts[-1:] = num - first[-1:]
  key = np.take(key, first)
  # Each document's first entry: binary searches, not a pass over the keys.
  starts = np.arange(num_docs, dtype=key.dtype)
  starts *= key.dtype.type(num_features)
  indptr = np.empty(num_docs + 1, np.int64)
  indptr[:-1] = np.searchsorted(key, starts)
  indptr[-1] = key.shape[0]
  ids = np.empty(key.shape[0], np.int32)
  if num_features & (num_features - 1):
    np.remainder(key, key.dtype.type(num_features), out=ids, casting='unsafe')
  else:  # a power of two: the same, faster.
    np.bitwise_and(key, key.dtype.type(num_features - 1), out=ids,
                   casting='unsafe')
  return csr.CsrFeatures(indptr, ids, counts, int(num_features))


class Weighing(NamedTuple):
  """A weighting made ready for many corpora (`prepare`, then `weigh`).

  ``df_index`` and ``scale_of_df`` say each feature's factor: the idf of
  its training document frequency (TF-IDF weightings), 1 otherwise, and 0
  for a feature min_df drops. Random reads of an F-long table are what
  weighting costs, so each entry reads its document frequency from a narrow
  copy and then the factor from a table over the df values.
  """
  weighting: str
  normalize: str
  df_index: np.ndarray | None  # uint16/uint32 [F] df (None: no factor).
  scale_of_df: np.ndarray | None  # float64 [max df + 1] factor by df.


def prepare(weighting: str, normalize: str = 'l2',
            df: np.ndarray | None = None, num_docs: int = 0,
            min_df: int = 1) -> Weighing:
  """The `Weighing` of `apply_weighting`'s arguments (see there)."""
  if weighting not in WEIGHTINGS:
    raise ValueError(f'features.weighting must be one of {WEIGHTINGS}, '
                     f'got {weighting!r}')
  if normalize not in NORMALIZATIONS:
    raise ValueError(f'features.normalize must be one of {NORMALIZATIONS}, '
                     f'got {normalize!r}')
  tfidf = weighting.endswith('tfidf')
  if not (tfidf or min_df > 1):
    return Weighing(weighting, normalize, None, None)
  top = int(df.max(initial=0))
  compact = df.astype(np.uint16 if top < 2**16 else np.uint32)
  values = np.arange(top + 1, dtype=np.int64)
  scale_of_df = (smooth_idf(values, num_docs) if tfidf else
                 np.ones(top + 1, np.float64))
  scale_of_df[:min_df] = 0.0
  return Weighing(weighting, normalize, compact, scale_of_df)


def apply_weighting(counts: csr.CsrFeatures, weighting: str,
                    normalize: str = 'l2', df: np.ndarray | None = None,
                    num_docs: int = 0, min_df: int = 1) -> csr.CsrFeatures:
  """Re-weights a counts corpus.

  Args:
    counts: CsrFeatures of raw counts (whole numbers; ids unique within a
      row).
    weighting: ``'tf'`` (counts), ``'binary'`` (1), ``'tfidf'`` (count * idf)
      or ``'sublinear_tfidf'`` ((1 + ln count) * idf), with the `smooth_idf`
      of the training document frequencies.
    normalize: ``'l2'`` divides each row by its L2 norm (empty rows stay
      zero); ``'none'`` leaves it.
    df: int [F] training document frequencies: needed by the TF-IDF
      weightings and by ``min_df`` > 1.
    num_docs: the number of training documents behind ``df``.
    min_df: entries of features in fewer than ``min_df`` training documents
      are removed (ids keep their values, rows may become empty), so the
      norm sees only the others.

  Returns:
    CsrFeatures with the same rows, float32 weights.
  """
  return weigh(counts, prepare(weighting, normalize, df, num_docs, min_df))


def weigh(counts: csr.CsrFeatures, weighing: Weighing) -> csr.CsrFeatures:
  """`apply_weighting` with a prepared `Weighing`, a block of rows at a
  time (small temporaries) on the text layer's threads."""
  ends = np.searchsorted(counts.indptr, np.arange(
      _BLOCK_ENTRIES, counts.nnz, _BLOCK_ENTRIES), side='right') - 1
  cuts = sorted(set([0, *ends.tolist(), counts.num_docs]))
  blocks = worker_pool.map_in_order(
      lambda rows: weigh_rows(counts, rows[0], rows[1], weighing),
      list(zip(cuts[:-1], cuts[1:])))
  if not blocks:  # no documents
    return csr.CsrFeatures(np.zeros(1, np.int64), counts.ids[:0],
                           np.zeros(0, np.float32), counts.num_features)
  if len(blocks) == 1:
    return blocks[0]
  return csr.concatenate(blocks)


_BLOCK_ENTRIES = 1 << 17  # entries weighed at a time.

# 1 + ln(c) for the counts c below this, read from a table.
_TABLE_COUNTS = 1 << 12
_SUBLINEAR = np.log(np.arange(_TABLE_COUNTS, dtype=np.float64).clip(1))
_SUBLINEAR += 1.0  # (entry 0 is never read: counts are >= 1)


def weigh_rows(counts: csr.CsrFeatures, lo: int, hi: int,
               weighing: Weighing) -> csr.CsrFeatures:
  """The weighted rows lo:hi of ``counts`` (R = hi - lo rows, M entries).

  The same float64 operations in the same order as ``(1 + ln c) * idf``
  then ``w / ||w||`` written out (the norm sums a row's squares with
  numpy's pairwise sum), then float32; a dropped feature's factor is 0, so
  it adds nothing to the norm and is removed last.
  """
  first, last = int(counts.indptr[lo]), int(counts.indptr[hi])
  ids = counts.ids[first:last]
  raw = counts.weights[first:last]
  indptr = counts.indptr[lo:hi + 1] - first
  if (weighing.weighting == 'tf' and weighing.normalize == 'none'
      and weighing.df_index is None):  # the counts themselves
    return csr.CsrFeatures(indptr, ids, raw, counts.num_features)
  if weighing.weighting == 'binary':
    w = np.ones(raw.shape[0], np.float64)
  elif weighing.weighting == 'sublinear_tfidf':
    whole = raw.astype(np.intp)
    if raw.shape[0] and int(whole.max()) < _TABLE_COUNTS:
      w = np.take(_SUBLINEAR, whole)
    else:
      w = np.log(raw.astype(np.float64))
      w += 1.0
  else:
    w = raw.astype(np.float64)
  factor = None
  if weighing.df_index is not None:
    # np.take with intp indices: numpy's fast gather (int32 ones are not).
    df_of = np.take(weighing.df_index, ids.astype(np.intp))
    factor = np.take(weighing.scale_of_df, df_of.astype(np.intp))
    w *= factor
  if weighing.normalize == 'l2':
    lengths = np.diff(indptr)
    filled = np.flatnonzero(lengths)
    norm = np.zeros(lengths.shape[0], np.float64)
    if filled.shape[0]:
      norm[filled] = np.sqrt(np.add.reduceat(w * w, indptr[filled]))
    norm[norm == 0] = 1.0
    w /= np.repeat(norm, lengths)
  if factor is not None:
    keep = factor != 0
    if not keep.all():
      kept_before = np.zeros(keep.shape[0] + 1, np.int64)
      np.cumsum(keep, out=kept_before[1:])
      return csr.CsrFeatures(kept_before[indptr], ids[keep],
                             w[keep].astype(np.float32), counts.num_features)
  return csr.CsrFeatures(indptr, ids, w.astype(np.float32),
                         counts.num_features)
