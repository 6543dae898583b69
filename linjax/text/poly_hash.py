"""The ``poly64`` token hash: a positional polynomial over code points.

numpy only, no JAX. A token t of code points c_0 .. c_{L-1} hashes to

    fmix64( sum_i c_i * P**i  +  L * LENGTH_MIX )     (all modulo 2**64)

with P an odd 64-bit constant and fmix64 MurmurHash3's 64-bit finaliser (a
bijection whose every output bit depends on every input bit). Unlike FNV-1a,
which walks a token byte by byte, the polynomial vectorises over a whole
text: with prefix sums ``S[k] = sum_{i<k} c_i P**i`` every token's sum is
``(S[end] - S[start]) * P**-start``, a few numpy passes for all tokens at
once (`span_hashes`). It reads code points, not UTF-8 bytes, so a text
needs no encoding either.

The powers come from two tables of `BLOCK` entries (P**j and P**-j): the
prefix sums restart their powers every `BLOCK` characters, and the few
tokens that cross a block boundary are finished exactly, one by one
(`_crossing`). `poly64` is the one-token reference in plain Python.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MASK64 = (1 << 64) - 1
P = 0xE7037ED1A0B428DB  # odd, and P - 1 is twice an odd number.
P_INV = pow(P, -1, 1 << 64)
LENGTH_MIX = 0x9E3779B97F4A7C15
_FMIX1 = 0xFF51AFD7ED558CCD
_FMIX2 = 0xC4CEB9FE1A85EC53

BLOCK_BITS = 16
BLOCK = 1 << BLOCK_BITS  # characters per block of powers.


def fmix64(x: int) -> int:
  """MurmurHash3's 64-bit finaliser of one value (reference)."""
  x ^= x >> 33
  x = (x * _FMIX1) & MASK64
  x ^= x >> 33
  x = (x * _FMIX2) & MASK64
  return x ^ (x >> 33)


def poly64(token: str) -> int:
  """The ``poly64`` hash of one token (the reference, plain Python)."""
  total, power = 0, 1
  for ch in token:
    total += ord(ch) * power
    power = (power * P) & MASK64
  return fmix64((total + len(token) * LENGTH_MIX) & MASK64)


def _power_table(base: int) -> np.ndarray:
  """uint64 [BLOCK] base**j modulo 2**64, j = 0 .. BLOCK - 1."""
  table = np.full(BLOCK, base, np.uint64)
  table[0] = 1
  return np.multiply.accumulate(table)  # wraps modulo 2**64.


_POWERS = _power_table(P)
_INVERSE_POWERS = _power_table(P_INV)


def finalize(h: np.ndarray) -> np.ndarray:
  """`fmix64` of every element of uint64 ``h``, in place; returns ``h``."""
  h ^= h >> np.uint64(33)
  h *= np.uint64(_FMIX1)
  h ^= h >> np.uint64(33)
  h *= np.uint64(_FMIX2)
  h ^= h >> np.uint64(33)
  return h


def span_hashes(points: np.ndarray, starts: np.ndarray,
                ends: np.ndarray) -> np.ndarray:
  """`poly64` of T spans of one text, vectorised.

  Args:
    points: uint32 [n] the text's code points (e.g. lower-cased).
    starts, ends: int64 [T] span t is points[starts[t]:ends[t]].

  Returns:
    uint64 [T] the hashes.
  """
  n = points.shape[0]
  prefix = np.zeros(n + 1, np.uint64)
  weighted = prefix[1:]
  whole = n - n % BLOCK
  # c_i * P**(i mod BLOCK): the powers restart at every block.
  np.multiply(points[:whole].reshape(-1, BLOCK), _POWERS,
              out=weighted[:whole].reshape(-1, BLOCK))
  np.multiply(points[whole:], _POWERS[:n - whole], out=weighted[whole:])
  np.cumsum(weighted, out=weighted)  # wraps modulo 2**64.
  h = prefix[ends]
  h -= prefix[starts]
  h *= _INVERSE_POWERS[starts & (BLOCK - 1)]
  crossing = np.flatnonzero((starts >> BLOCK_BITS)
                            != ((ends - 1) >> BLOCK_BITS))
  if crossing.shape[0]:
    h[crossing] = _crossing(prefix, starts[crossing], ends[crossing])
  h += (ends - starts).astype(np.uint64) * np.uint64(LENGTH_MIX)
  return finalize(h)


def _crossing(prefix: np.ndarray, starts: np.ndarray,
              ends: np.ndarray) -> list[int]:
  """The polynomial sums of spans that cross block boundaries: each block's
  part, re-based from its block's powers to the span's start."""
  out = []
  for start, end in zip(starts.tolist(), ends.tolist()):
    total, at = 0, start
    while at < end:
      stop = min(end, (at // BLOCK + 1) * BLOCK)
      part = (int(prefix[stop]) - int(prefix[at])) * pow(
          P_INV, at % BLOCK, 1 << 64)  # c_i * P**(i - at) over the part
      total += part * pow(P, at - start, 1 << 64)
      at = stop
    out.append(total & MASK64)
  return out


def hash_strings(strings: Sequence[str]) -> np.ndarray:
  """uint64 [U] `poly64` of U strings, vectorised (`span_hashes`)."""
  lengths = np.fromiter(map(len, strings), np.int64, len(strings))
  ends = np.cumsum(lengths)
  points = np.frombuffer(''.join(strings).encode('utf-32-le',
                                                  'surrogatepass'), np.uint32)
  return span_hashes(points, ends - lengths, ends)
