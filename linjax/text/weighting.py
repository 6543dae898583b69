"""Per-document feature counts and their weighting (tf, binary, TF-IDF, L2).

numpy only, no JAX. `count_features` merges feature occurrences into a
`linjax.csr.CsrFeatures` of counts (N documents, F features); `apply_weighting`
re-weights it (tf | binary | tfidf | sublinear_tfidf, then optional L2
normalisation of each row) with `smooth_idf`, scikit-learn's smooth IDF.
"""

from __future__ import annotations

import numpy as np

from linjax.text import csr

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
    key: int64 [M] the occurrences' keys (sorted in place).
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
  row = key // num_features
  indptr = np.zeros(num_docs + 1, np.int64)
  np.cumsum(np.bincount(row, minlength=num_docs), out=indptr[1:])
  return csr.CsrFeatures(indptr, (key - row * num_features).astype(np.int32),
                         counts.astype(np.float32), int(num_features))


def apply_weighting(counts: csr.CsrFeatures, weighting: str,
                    idf: np.ndarray | None = None,
                    normalize: str = 'l2') -> csr.CsrFeatures:
  """Re-weights a counts corpus.

  Args:
    counts: CsrFeatures of raw counts (ids unique within a row).
    weighting: ``'tf'`` (counts), ``'binary'`` (1), ``'tfidf'`` (count * idf)
      or ``'sublinear_tfidf'`` ((1 + ln count) * idf).
    idf: float [F], needed by the two TF-IDF weightings.
    normalize: ``'l2'`` divides each row by its L2 norm (empty rows stay
      zero); ``'none'`` leaves it.

  Returns:
    CsrFeatures with the same structure, float32 weights.
  """
  w = counts.weights.astype(np.float64)
  if weighting == 'binary':
    w = np.ones_like(w)
  elif weighting == 'sublinear_tfidf':
    w = (1.0 + np.log(w)) * idf[counts.ids]
  elif weighting == 'tfidf':
    w = w * idf[counts.ids]
  elif weighting != 'tf':
    raise ValueError(f'features.weighting must be one of {WEIGHTINGS}, '
                     f'got {weighting!r}')
  if normalize == 'l2':
    row = np.repeat(np.arange(counts.num_docs), counts.row_lengths())
    norm = np.sqrt(np.bincount(row, weights=w * w, minlength=counts.num_docs))
    w = w / np.where(norm > 0, norm, 1.0)[row]
  elif normalize != 'none':
    raise ValueError(f'features.normalize must be one of {NORMALIZATIONS}, '
                     f'got {normalize!r}')
  return counts._replace(weights=w.astype(np.float32))
