"""Feature hashing: token hashes and n-gram id arithmetic.

numpy only, no JAX. A token hashes, by the featuriser's ``hash`` setting
(`HASHES`), to its ``poly64`` (`linjax.text.poly_hash`: a polynomial over its
code points with a 64-bit finaliser, uint64; the default, vectorised over a
whole text) or to the 32-bit FNV-1a of its UTF-8 bytes (``fnv1a``, uint32:
the hash of models saved before format version 4). An n-gram combines its
tokens' hashes as fastText does (``h = h * 116049371 + h_next`` in uint64)
and its feature id is ``h % buckets``. Both hashes are stable across
processes and machines (Python's ``hash`` is salted).

The n-gram helpers work on tokens stored flat, in document order, with a
length per document: `ngram_starts` finds the n-grams that stay inside one
document, `exact_keys` gives each an exact integer key over a token table and
`key_digits` turns keys back into token indices.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from linjax.text import poly_hash

NGRAM_MULTIPLIER = 116049371  # fastText's n-gram hash combiner.
POLY64, FNV1A = 'poly64', 'fnv1a'
HASHES = (POLY64, FNV1A)  # the token hashes; the first is the default.

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a_32(token: str) -> int:
  """32-bit FNV-1a of the UTF-8 bytes of ``token`` (reference, one token)."""
  h = _FNV_OFFSET
  for byte in token.encode('utf-8'):
    h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
  return h


def hash_tokens(tokens: Sequence[str], kind: str = FNV1A) -> np.ndarray:
  """The hashes of U token strings: uint32 [U] `fnv1a_32` (``kind`` fnv1a)
  or uint64 [U] `poly_hash.poly64` (``kind`` poly64), vectorised."""
  if kind == POLY64:
    return poly_hash.hash_strings(tokens)
  if kind != FNV1A:
    raise ValueError(f'hash must be one of {HASHES}, got {kind!r}')
  return _fnv1a_tokens(tokens)


def _fnv1a_tokens(tokens: Sequence[str]) -> np.ndarray:
  """Vectorised `fnv1a_32`: uint32 [U] hashes of U tokens.

  One numpy step per byte position, over the tokens at least that long.
  """
  encoded = [t.encode('utf-8') for t in tokens]
  num = len(encoded)
  lengths = np.fromiter(map(len, encoded), np.int64, num)
  data = np.frombuffer(b''.join(encoded), np.uint8)
  order = np.argsort(-lengths, kind='stable')  # longest first.
  sorted_lengths = lengths[order]
  starts = (np.cumsum(lengths) - lengths)[order]
  h = np.full(num, _FNV_OFFSET, np.uint32)
  prime = np.uint32(_FNV_PRIME)
  longest = int(sorted_lengths[0]) if num else 0
  # active[j]: how many tokens have more than j bytes.
  active = np.searchsorted(-sorted_lengths, -np.arange(longest), side='left')
  for j, m in enumerate(active.tolist()):
    part = h[:m]
    part ^= data[starts[:m] + j]
    part *= prime  # wraps modulo 2**32.
  out = np.empty(num, np.uint32)
  out[order] = h
  return out


# Spans longer than this many bytes finish their hash in Python, byte by byte,
# instead of one numpy step per byte position for a handful of spans.
_LONG_SPAN = 64


def hash_spans(data: np.ndarray, starts: np.ndarray,
               lengths: np.ndarray) -> np.ndarray:
  """`fnv1a_32` of T byte spans of one buffer, without making strings.

  One numpy step per byte position over the spans at least that long (sorted
  longest first, so that those are a prefix); past `_LONG_SPAN` bytes the few
  spans left finish in Python.

  Args:
    data: uint8 [B] the bytes (e.g. a text's UTF-8).
    starts: int64 [T] where each span starts in ``data``.
    lengths: int64 [T] its length in bytes.

  Returns:
    uint32 [T] the FNV-1a hash of ``data[starts[t]:starts[t] + lengths[t]]``.
  """
  num = starts.shape[0]
  clipped = np.minimum(lengths, _LONG_SPAN).astype(np.uint8)
  order = np.argsort(_LONG_SPAN - clipped, kind='stable')  # longest first.
  pos = starts[order]
  h = np.full(num, _FNV_OFFSET, np.uint32)
  # active[j]: how many spans have more than j bytes.
  active = num - np.cumsum(np.bincount(clipped, minlength=_LONG_SPAN + 1))
  active = active[:_LONG_SPAN]
  prime = np.uint32(_FNV_PRIME)
  byte = np.empty(num, np.uint8)
  for m in active.tolist():
    if m == 0:
      break
    np.take(data, pos[:m], out=byte[:m])
    part = h[:m]
    part ^= byte[:m]
    part *= prime  # wraps modulo 2**32.
    pos[:m] += 1
  long = np.flatnonzero(lengths[order] > _LONG_SPAN)
  if long.shape[0]:
    rest = (lengths[order][long] - _LONG_SPAN).tolist()
    for i, at, size in zip(long.tolist(), pos[long].tolist(), rest):
      value = int(h[i])
      for b in data[at:at + size].tobytes():
        value = ((value ^ b) * _FNV_PRIME) & 0xFFFFFFFF
      h[i] = value
  out = np.empty(num, np.uint32)
  out[order] = h
  return out


def ngram_starts(lengths: np.ndarray, n: int) -> np.ndarray:
  """Positions where an n-gram starts without crossing a document end.

  Args:
    lengths: int [N] tokens per document (tokens are stored flat, in order).
    n: the n-gram order, >= 1.

  Returns:
    int64 [G] flat positions t such that tokens t..t+n-1 are in one document.
  """
  ends = np.repeat(np.cumsum(lengths), lengths)
  return np.flatnonzero(np.arange(ends.shape[0]) + n <= ends)


def exact_keys(tok: np.ndarray, starts: np.ndarray, n: int,
               base: int) -> np.ndarray:
  """Mixed-radix key of each n-gram (exact; Python ints if int64 overflows).

  Args:
    tok: int [T] flat token indices, each < ``base``.
    starts: int [G] first position of each n-gram (`ngram_starts`).
    n: the n-gram order.
    base: the radix: the size of the token table.

  Returns:
    [G] keys ``sum(tok[s + j] * base ** (n - 1 - j))``: int64 when
    ``base ** n < 2**63``, else Python ints (dtype object).
  """
  dtype = np.int64 if base ** n < 2**63 else object
  key = tok[starts].astype(dtype)
  for j in range(1, n):
    key = key * base + tok[starts + j].astype(dtype)
  return key


def key_digits(keys: np.ndarray, n: int, base: int) -> np.ndarray:
  """Inverse of `exact_keys`: int64 [G, n] token indices of [G] keys."""
  digits = np.empty((keys.shape[0], n), np.int64)
  for j in range(n - 1, -1, -1):
    digits[:, j] = keys % base
    keys = keys // base
  return digits
