"""Names of features: the n-gram vocabulary and the strings of hash buckets.

Host-side helpers of `linjax.text.Featurizer` (numpy only, no JAX). A feature
id is named in one of two ways:

* Vocabulary mode (``buckets == 0``): `fit_vocabulary` keeps the training
  n-grams seen at least ``min_count`` times (at most ``max_vocab``), ids
  ordered by count then string; `build_lookup` turns that list into a
  `Lookup` that `token_indices` and `ngram_ids` read to map n-grams to ids.
* Hashing mode (``buckets > 0``): `fit_bucket_names` remembers, per bucket,
  up to `NAMES_PER_BUCKET` training n-grams (most frequent first) as
  `BucketNames`; `bucket_name` reads them back.

An n-gram is a row of token indices into ``Tokens.strings``; the Featurizer
says which n-grams count through ``starts(n)``: int64 [M_n] token positions
where an n-gram of order n starts (words up to ``ngrams``, shapes up to
``shape_ngrams``).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import numpy as np

from linjax.text.hashing import NGRAM_MULTIPLIER
from linjax.text.hashing import exact_keys
from linjax.text.hashing import key_digits
from linjax.text.tokenizer import Tokens
from linjax.text.tokenizer import gc_paused
from linjax.text.tokenizer import index_tokens

NAMES_PER_BUCKET = 3  # training strings remembered per hash bucket.

Starts = Callable[[int], np.ndarray]  # n -> int64 [M_n] n-gram starts.

_NO_KEYS = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def distinct_ngrams(
    toks: Tokens, max_order: int,
    starts: Starts) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
  """The distinct n-grams of each order and their training counts.

  Args:
    toks: the tokenised training documents.
    max_order: the largest n-gram order, max(ngrams, shape_ngrams).
    starts: n -> int64 [M_n] starts of the n-grams of order n (order 1 counts
      every token, whatever ``starts(1)`` says).

  Yields:
    (n, token indices int64 [G, n], counts int64 [G]) for n = 1..max_order;
    for n == 1 the G = U rows are the token strings in order.
  """
  base = max(len(toks.strings), 1)
  for n in range(1, max_order + 1):
    if n == 1:
      counts = np.bincount(toks.tok, minlength=len(toks.strings))
      yield n, np.arange(len(toks.strings))[:, None], counts
      continue
    keys = exact_keys(toks.tok, starts(n), n, base)
    keys, counts = np.unique(keys, return_counts=True)
    yield n, key_digits(keys, n, base), counts.astype(np.int64)


# Vocabulary mode. -------------------------------------------------------------


def fit_vocabulary(toks: Tokens, max_order: int, starts: Starts,
                   min_count: int, max_vocab: int) -> list[str]:
  """The vocabulary of the training n-grams: id -> space-joined string.

  Args:
    toks, max_order, starts: as in `distinct_ngrams`.
    min_count: n-grams seen fewer times are left out.
    max_vocab: at most this many n-grams are kept (0: all).

  Returns:
    V strings, ordered by training count (descending), ties by string.

  Raises:
    ValueError: no n-gram reaches ``min_count``.
  """
  strings, counts = [], []
  words = np.array(toks.strings + [''], dtype=object)[:-1]  # 1-D, never 2-D.
  for _, digits, count in distinct_ngrams(toks, max_order, starts):
    keep = count >= min_count
    if max_vocab and keep.sum() > max_vocab:
      # Only n-grams tied with or above the max_vocab-th count can make it.
      cutoff = np.sort(count[keep])[::-1][max_vocab - 1]
      keep &= count >= cutoff
    digits = digits[keep]
    joined = words[digits[:, 0]]
    for j in range(1, digits.shape[1]):
      joined = joined + ' ' + words[digits[:, j]]  # str + per element.
    strings += joined.tolist()
    counts.append(count[keep])
  counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
  if not strings:
    raise ValueError(
        'Featurizer.fit: the vocabulary is empty (no n-gram reaches '
        f'features.min_count={min_count}); lower min_count, or give '
        'texts with tokens.')
  by_string = np.empty(len(strings), np.int64)
  by_string[sorted(range(len(strings)), key=strings.__getitem__)] = (
      np.arange(len(strings)))
  order = np.lexsort((by_string, -counts))  # count down, then string.
  if max_vocab:
    order = order[:max_vocab]
  return [strings[i] for i in order.tolist()]


class Lookup(NamedTuple):
  """Vocabulary n-gram -> id, as exact keys over the vocabulary's tokens."""
  table: dict[str, int]  # token string -> token index t in [0, U_v).
  # n -> (sorted exact keys [V_n], their vocabulary ids int64 [V_n]).
  keys_by_order: dict[int, tuple[np.ndarray, np.ndarray]]


def build_lookup(vocab: list[str]) -> Lookup:
  """The `Lookup` of V vocabulary strings (space-joined tokens; id = index)."""
  with gc_paused():
    grams = index_tokens([v.split(' ') for v in vocab])
  table = dict(zip(grams.strings, itertools.count()))
  starts = np.cumsum(grams.lengths) - grams.lengths
  keys_by_order = {}
  for n in np.unique(grams.lengths).tolist():
    rows = np.flatnonzero(grams.lengths == n)
    keys = exact_keys(grams.tok, starts[rows], n, len(table))
    order = np.argsort(keys)  # keys are distinct.
    keys_by_order[n] = (keys[order], rows[order])
  return Lookup(table, keys_by_order)


def token_indices(lookup: Lookup, strings: list[str]) -> np.ndarray:
  """int64 [U]: each string's index in ``lookup.table``, -1 if absent."""
  return np.fromiter(map(lookup.table.get, strings, itertools.repeat(-1)),
                     np.int64, len(strings))


def ngram_ids(lookup: Lookup, flat: np.ndarray, start: np.ndarray,
              n: int) -> tuple[np.ndarray, np.ndarray]:
  """Vocabulary ids of n-grams of order n over vocabulary token indices.

  Args:
    lookup: from `build_lookup`.
    flat: int64 [T] each token's `token_indices` (no -1 inside the n-grams).
    start: int64 [M] starts of the n-grams to look up.
    n: their order.

  Returns:
    (ids int64 [K] of the n-grams in the vocabulary, found bool [M]) where
    ``ids`` are those of ``start[found]``, in order.
  """
  sorted_keys, sorted_ids = lookup.keys_by_order.get(n, _NO_KEYS)
  if sorted_keys.shape[0] == 0:
    return sorted_ids, np.zeros(start.shape[0], bool)
  key = exact_keys(flat, start, n, len(lookup.table))
  where = np.minimum(np.searchsorted(sorted_keys, key),
                     sorted_keys.shape[0] - 1)
  found = sorted_keys[where] == key
  return sorted_ids[where[found]], found


# Hashing mode. ----------------------------------------------------------------


class BucketNames(NamedTuple):
  """Training n-grams remembered per hash bucket (K of them in all)."""
  tokens: list[str]  # the token table the n-grams use.
  buckets: np.ndarray  # int64 [K] sorted; a bucket's names most frequent first.
  grams: np.ndarray  # int64 [K, max_order] token indices, -1 padded.


def sort_buckets_by_count(bucket: np.ndarray,
                          count: np.ndarray) -> np.ndarray:
  """Argsort of int64 [G] by bucket, then count (descending), then position."""
  num = bucket.shape[0]
  values = np.unique(count)
  rank = values.shape[0] - 1 - np.searchsorted(values, count)  # 0: largest.
  radix = values.shape[0] * num
  if num and (int(bucket.max()) + 1) * radix < 2**63:
    # One value sort of a packed int64 key: much faster than lexsort.
    key = (bucket * values.shape[0] + rank) * num + np.arange(num)
    return np.sort(key) % num
  return np.lexsort((np.arange(num), rank, bucket))


def fit_bucket_names(toks: Tokens, max_order: int, starts: Starts,
                     buckets: int,
                     per_bucket: int = NAMES_PER_BUCKET) -> BucketNames:
  """Keeps, per bucket, the ``per_bucket`` most frequent training n-grams.

  Args:
    toks: the tokenised training documents, with ``hashes`` (uint32 [U]).
    max_order, starts: as in `distinct_ngrams`.
    buckets: the number of hash buckets; n-gram hashes as in the Featurizer.
    per_bucket: names kept per bucket (equal counts: lower order first).

  Returns:
    `BucketNames` whose token table holds only the tokens the names use,
    renumbered in first-use order.
  """
  token_hash = toks.hashes.astype(np.uint64)
  mult = np.uint64(NGRAM_MULTIPLIER)
  bucket_of, counts, grams = [], [], []
  for n, digits, count in distinct_ngrams(toks, max_order, starts):
    h = token_hash[digits[:, 0]]
    for j in range(1, n):
      h = h * mult + token_hash[digits[:, j]]
    bucket_of.append((h % np.uint64(buckets)).astype(np.int64))
    counts.append(count)
    padded = np.full((digits.shape[0], max_order), -1, np.int64)
    padded[:, :n] = digits
    grams.append(padded)
  bucket = np.concatenate(bucket_of)
  count = np.concatenate(counts)
  gram = np.concatenate(grams)
  order = sort_buckets_by_count(bucket, count)
  bucket = bucket[order]
  group_start = np.flatnonzero(np.diff(bucket, prepend=-1))
  rank = np.arange(bucket.shape[0]) - np.repeat(
      group_start, np.diff(np.append(group_start, bucket.shape[0])))
  keep = order[rank < per_bucket]
  gram = gram[keep]
  # Keep only the tokens these n-grams use, renumbered in first-use order.
  used = np.zeros(len(toks.strings) + 1, bool)
  used[gram] = True  # gram == -1 (padding) marks the extra last slot.
  used = used[:-1]
  new_index = np.append(np.cumsum(used) - 1, -1)
  table = [toks.strings[t] for t in np.flatnonzero(used).tolist()]
  return BucketNames(table, bucket[rank < per_bucket], new_index[gram])


def bucket_name(names: BucketNames, bucket: int) -> str | None:
  """The names of one bucket joined with ``' | '``; None if it has none."""
  lo, hi = np.searchsorted(names.buckets, [bucket, bucket + 1])
  if hi <= lo:
    return None
  return ' | '.join(' '.join(names.tokens[t] for t in row if t >= 0)
                    for row in names.grams[lo:hi].tolist())


def bucket_names_to_dict(names: BucketNames) -> dict[str, list]:
  """JSON form: token table, bucket of each name, grams row-major [K * n]."""
  return {'tokens': names.tokens, 'buckets': names.buckets.tolist(),
          'grams': names.grams.ravel().tolist()}


def bucket_names_from_dict(d: Mapping[str, Any], max_order: int) -> BucketNames:
  """Inverse of `bucket_names_to_dict`; grams reshaped to [K, max_order]."""
  grams = np.asarray(d['grams'], np.int64).reshape(-1, max_order)
  return BucketNames(list(d['tokens']), np.asarray(d['buckets'], np.int64),
                     grams)
