"""Documents -> per-document counts of hashed n-grams, chunked and threaded.

numpy only, no JAX. The hashing `linjax.text.Featurizer`'s fast path for
``words_punct``: `hashed_tokens.hash_batch` gives every token's hash (and
word shape) straight from the text; `count_hashed` turns those into counts of
word n-grams 1..ngrams and shape n-grams 1..shape_ngrams, with fastText's
n-gram hash combiner and ``h % buckets`` (`linjax.text.hashing`), exactly as
the token-string path of the Featurizer does. The corpus goes through in
chunks of about `CHUNK_CHARS` characters, so the per-token and per-n-gram
arrays (tens of bytes per token) exist for a chunk at a time and peak memory
stays flat as the corpus grows; the chunks run on the text layer's threads
(`linjax.text.worker_pool`). The result does not depend on either.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from linjax.text import csr
from linjax.text import hashed_tokens
from linjax.text import worker_pool
from linjax.text.hashing import NGRAM_MULTIPLIER
from linjax.text.hashing import POLY64
from linjax.text.weighting import count_keys

CHUNK_CHARS = 1 << 18  # characters featurised at a time.

def _chunks(texts: Sequence[str], buckets: int) -> list[list[str]]:
  """The documents in chunks of about `CHUNK_CHARS` characters (and few
  enough documents for 32-bit keys)."""
  texts = list(texts)
  ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)
  cuts = [0] + np.searchsorted(
      ends, np.arange(CHUNK_CHARS, int(ends[-1]) if texts else 0,
                      CHUNK_CHARS), side='right').tolist() + [len(texts)]
  # Keys doc * F + bucket of a chunk fit in 32 bits (sorted twice as fast)
  # when it has fewer than 2**32 / F documents (`key_dtype`).
  max_docs = ((1 << 32) - 1) // buckets
  if max_docs >= _MIN_DOCS_32:
    cuts += list(range(0, len(texts), max_docs))
  cuts = sorted(set(cuts))
  chunks = [texts[lo:hi] for lo, hi in zip(cuts[:-1], cuts[1:])] or [[]]
  return chunks


def count_hashed_parts(texts: Sequence[str], lowercase: bool, ngrams: int,
                       shape_ngrams: int, buckets: int,
                       hash_kind: str = POLY64, then=None) -> list:
  """`count_hashed`, a chunk of documents at a time: [``then(counts)``] of
  each chunk's CsrFeatures of counts, in document order (``then``: none by
  default; it runs on the worker thread, while the chunk is in cache)."""
  return worker_pool.map_in_order(
      lambda chunk: (lambda counts: counts if then is None else then(counts))(
          _count_chunk(chunk, lowercase, ngrams, shape_ngrams, buckets,
                       hash_kind)),
      _chunks(texts, buckets))


def count_hashed(texts: Sequence[str], lowercase: bool, ngrams: int,
                 shape_ngrams: int, buckets: int,
                 hash_kind: str = POLY64) -> csr.CsrFeatures:
  """Counts of the hashed n-grams of N ``words_punct`` documents.

  Args:
    texts: [N] documents.
    lowercase: hash the lower-cased tokens.
    ngrams: word n-grams 1..ngrams.
    shape_ngrams: word-shape n-grams 1..shape_ngrams (0: none).
    buckets: F, the hash buckets.
    hash_kind: the token hash (`linjax.text.hashing.HASHES`).

  Returns:
    CsrFeatures [N, F] of counts, ids unique and ascending in each row.
  """
  parts = count_hashed_parts(texts, lowercase, ngrams, shape_ngrams, buckets,
                             hash_kind)
  return parts[0] if len(parts) == 1 else csr.concatenate(parts)


def _count_chunk(texts: list[str], lowercase: bool, ngrams: int,
                 shape_ngrams: int, buckets: int,
                 hash_kind: str) -> csr.CsrFeatures:
  hashed = hashed_tokens.hash_batch(texts, lowercase, shape_ngrams > 0,
                                    hash_kind)
  dtype = key_dtype(len(texts), buckets)
  keys = gram_keys(hashed.hashes, hashed.lengths, ngrams, buckets, dtype)
  if hashed.shapes is not None:
    keys += gram_keys(hashed_tokens.SHAPE_HASHES[hash_kind][hashed.shapes],
                      hashed.shape_lengths, shape_ngrams, buckets, dtype)
  return count_keys(np.concatenate(keys), len(texts), buckets)


_MIN_DOCS_32 = 256  # smaller chunks would cost more than 32-bit keys save.


def key_dtype(num_docs: int, buckets: int) -> type:
  """uint32 if every key ``doc * F + bucket`` of N documents, and `gap`'s
  value, fit in 32 bits; else int64."""
  return np.uint32 if num_docs * buckets < (1 << 32) else np.int64


def gap(dtype) -> int:
  """The key that marks an n-gram across documents (`gram_keys`): larger
  than every real key of `key_dtype`, so it sorts last."""
  return int(np.iinfo(dtype).max)


def gram_keys(hashes: np.ndarray, lengths: np.ndarray, order: int,
              buckets: int, dtype=np.int64) -> list[np.ndarray]:
  """Keys ``doc * F + bucket`` of the n-grams 1..order of N documents.

  Args:
    hashes: uint32 or uint64 [T] token hashes, flat in document order.
    lengths: int64 [N] tokens per document.
    order: the largest n.
    buckets: F.
    dtype: of the keys, `key_dtype`.

  Returns:
    Key arrays, one per n; an n-gram's bucket is its fastText hash (uint64,
    wrapping) modulo F. An n-gram that does not lie inside one document
    has the key `gap(dtype)` (`count_keys` drops those): marking the few
    document ends costs less than filtering every n-gram.
  """
  doc = np.repeat(np.arange(lengths.shape[0], dtype=dtype) * dtype(buckets),
                  lengths)
  flat = hashes.astype(np.uint64)
  if buckets & (buckets - 1):
    bucket_of = lambda h: (h % np.uint64(buckets)).astype(dtype)
  else:  # a power of two: the same, faster.
    bucket_of = lambda h: (h & np.uint64(buckets - 1)).astype(dtype)
  keys = [doc + bucket_of(flat)]
  gram = flat
  mult = np.uint64(NGRAM_MULTIPLIER)
  doc_ends = np.cumsum(lengths)
  for n in range(2, order + 1):
    gram = gram[:-1] * mult + flat[n - 1:]  # wraps modulo 2**64.
    key = bucket_of(gram)
    key += doc[:1 - n]
    # The n-gram at t crosses a document end e when e - n < t < e.
    across = (doc_ends[:, None] - np.arange(1, n)).ravel()
    across = across[(across >= 0) & (across < key.shape[0])]
    key[across] = gap(dtype)
    keys.append(key)
  return keys
