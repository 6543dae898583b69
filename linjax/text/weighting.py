"""Per-document feature counts and their weighting (tf, binary, TF-IDF, L2).

numpy only, no JAX. `count_features` (or `count_keys`) merges feature
occurrences into a `linjax.text.csr.CsrFeatures` of counts (N documents, F
features); `apply_weighting` drops the features under min_df and re-weights
the rest (tf | binary | tfidf | sublinear_tfidf, then optional L2
normalisation of each row) with `smooth_idf`, scikit-learn's smooth IDF, a
block of rows at a time on the text layer's threads.
"""

from __future__ import annotations

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
    key: int64 (or uint32) [M] the occurrences' keys (sorted in place).
    num_docs: N.
    num_features: F.

  Returns:
    CsrFeatures of the counts, as `count_features`.
  """
  key.sort()
  new = np.empty(key.shape[0], bool)
  new[:1] = True
  np.not_equal(key[1:], key[:-1], out=new[1:])
  first = np.flatnonzero(new)
  counts = np.diff(first, append=key.shape[0])
  key = key[first]
  row = (key // num_features).astype(np.int64)
  indptr = np.zeros(num_docs + 1, np.int64)
  np.cumsum(np.bincount(row, minlength=num_docs), out=indptr[1:])
  return csr.CsrFeatures(indptr, (key - row * num_features).astype(np.int32),
                         counts.astype(np.float32), int(num_features))


def apply_weighting(counts: csr.CsrFeatures, weighting: str,
                    normalize: str = 'l2', df: np.ndarray | None = None,
                    num_docs: int = 0, min_df: int = 1) -> csr.CsrFeatures:
  """Re-weights a counts corpus.

  Args:
    counts: CsrFeatures of raw counts (ids unique within a row).
    weighting: ``'tf'`` (counts), ``'binary'`` (1), ``'tfidf'`` (count * idf)
      or ``'sublinear_tfidf'`` ((1 + ln count) * idf), with the `smooth_idf`
      of the training document frequencies.
    normalize: ``'l2'`` divides each row by its L2 norm (empty rows stay
      zero); ``'none'`` leaves it.
    df: int [F] training document frequencies: needed by the TF-IDF
      weightings and by ``min_df`` > 1.
    num_docs: the number of training documents behind ``df``.
    min_df: entries of features in fewer than ``min_df`` training documents
      are removed first (ids keep their values, rows may become empty), so
      the norm sees only the others.

  Returns:
    CsrFeatures with the same rows, float32 weights.
  """
  if weighting not in WEIGHTINGS:
    raise ValueError(f'features.weighting must be one of {WEIGHTINGS}, '
                     f'got {weighting!r}')
  if normalize not in NORMALIZATIONS:
    raise ValueError(f'features.normalize must be one of {NORMALIZATIONS}, '
                     f'got {normalize!r}')
  tfidf = weighting.endswith('tfidf')
  # Random reads of an F-long table are what weighting costs: read the
  # document frequency of each entry from a narrow copy, then its idf (0 for
  # a dropped feature; an idf is >= 1) from a table over the df values.
  compact, scale_of_df = None, None
  if tfidf or min_df > 1:
    top = int(df.max(initial=0))
    compact = df.astype(np.uint16 if top < 2**16 else np.uint32)
    values = np.arange(top + 1, dtype=np.int64)
    scale_of_df = (smooth_idf(values, num_docs) if tfidf else
                   np.ones(top + 1, np.float64))
    scale_of_df[:min_df] = 0.0
  # A block of rows at a time: small temporaries, reused by the allocator.
  ends = np.searchsorted(counts.indptr, np.arange(
      _BLOCK_ENTRIES, counts.nnz, _BLOCK_ENTRIES), side='right') - 1
  cuts = sorted(set([0, *ends.tolist(), counts.num_docs]))

  def weigh_block(rows: tuple[int, int]):
    lo, hi = rows
    first, last = int(counts.indptr[lo]), int(counts.indptr[hi])
    block_ids = counts.ids[first:last]
    block_counts = counts.weights[first:last]
    block_lengths = np.diff(counts.indptr[lo:hi + 1])
    factor = None if compact is None else scale_of_df[compact[block_ids]]
    if min_df > 1:
      keep = factor != 0
      if not keep.all():
        row = np.repeat(np.arange(hi - lo), block_lengths)
        block_lengths = np.bincount(row[keep], minlength=hi - lo)
        block_ids, block_counts = block_ids[keep], block_counts[keep]
        factor = factor[keep]
    weights = _weigh_rows(block_counts, factor if tfidf else None,
                          block_lengths, weighting, normalize)
    return block_ids, weights.astype(np.float32), block_lengths

  blocks = worker_pool.map_in_order(weigh_block,
                                    list(zip(cuts[:-1], cuts[1:])))
  if not blocks:  # no documents
    return csr.CsrFeatures(np.zeros(1, np.int64), counts.ids[:0],
                           np.zeros(0, np.float32), counts.num_features)
  ids, weights, lengths = zip(*blocks)
  indptr = np.zeros(counts.num_docs + 1, np.int64)
  np.cumsum(np.concatenate(lengths), out=indptr[1:])
  return csr.CsrFeatures(indptr, np.concatenate(ids), np.concatenate(weights),
                         counts.num_features)


_BLOCK_ENTRIES = 1 << 17  # entries weighed at a time.


def _weigh_rows(counts: np.ndarray, idf: np.ndarray | None,
                lengths: np.ndarray, weighting: str,
                normalize: str) -> np.ndarray:
  """`apply_weighting` of consecutive rows: float64 [M] weights.

  Args:
    counts: float32 [M] the rows' counts.
    idf: float64 [M] the idf of each entry's feature (TF-IDF weightings).
    lengths: int64 [R] entries per row.
    weighting, normalize: as in `apply_weighting`.

  In place where it can be, with the same float64 operations in the same
  order as ``(1 + ln c) * idf`` and ``w / ||w||`` written out, so the
  weights are bit for bit those of that formula.
  """
  if weighting == 'binary':
    w = np.ones(counts.shape[0], np.float64)
  else:
    w = counts.astype(np.float64)
  if weighting == 'sublinear_tfidf':
    np.log(w, out=w)
    w += 1.0
  if idf is not None:
    w *= idf
  if normalize == 'l2':
    row = np.repeat(np.arange(lengths.shape[0]), lengths)
    norm = np.sqrt(np.bincount(row, weights=w * w,
                               minlength=lengths.shape[0]))
    norm[norm == 0] = 1.0
    w /= norm[row]
  return w
