"""Vectorised kernels for `linjax.tokenizer`: a whole corpus at once in numpy.

numpy only, no regex. A corpus joined into one string is viewed as its n code
points (`code_points`). `classify` gives each the class Python's ``re`` sees
for str patterns (``\\s`` is ``str.isspace``, ``\\w`` is ``str.isalnum`` or
``'_'``) and a small rank (distinct code points, distinct ranks, none 0);
`token_bounds` finds the tokens of ``\\w+|[^\\w\\s]`` (for tweets
``\\w+|(?<!\\w)[#@]\\w+|[^\\w\\s]``) from the classes alone, and
`first_occurrences` groups equal tokens exactly, comparing their ranks K at a
time as 64-bit words (`windows`: the K ranks from each position).
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

SPACE, WORD, OTHER, TAG = 0, 1, 2, 3  # TAG: '#' or '@' (an OTHER).
_CODE_POINTS = 0x110000

# Each code point met so far: rank << 2 | class, ranks 1, 2, ... in order of
# first sight (0: not met yet).
_CODES = np.zeros(_CODE_POINTS, np.uint32)
_NUM_RANKS = [0]
_LOCK = threading.Lock()

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection.
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)

# first_positions' hash-table rounds before it sorts what is left.
_ROUNDS = 6

# Longer tokens (in 64-bit words of ranks) are grouped by their strings.
MAX_WORDS = 32


def char_class(ch: str) -> int:
  """The class of one character as ``re`` str patterns see it (reference)."""
  if ch.isspace():
    return SPACE
  if ch.isalnum() or ch == '_':
    return WORD
  return TAG if ch in '#@' else OTHER


def code_points(text: str) -> np.ndarray:
  """uint32 [n] code points of ``text`` (lone surrogates included), n=len."""
  return np.frombuffer(text.encode('utf-32-le', 'surrogatepass'), np.uint32)


def _learn(points: np.ndarray) -> None:
  """Gives the code points not met before a class and a rank, in order."""
  with _LOCK:
    new = np.flatnonzero(np.bincount(points))  # sorted, O(n) unlike unique
    new = new[_CODES[new] == 0]
    ranks = np.arange(_NUM_RANKS[0] + 1, _NUM_RANKS[0] + 1 + new.shape[0])
    classes = [char_class(chr(p)) for p in new.tolist()]
    _CODES[new] = (ranks << 2 | np.array(classes, np.int64)).astype(np.uint32)
    _NUM_RANKS[0] += new.shape[0]


def classify(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
  """Class and rank of n code points.

  Only code points not met before are classified in Python (`char_class`),
  once each; the rest is one table lookup.

  Args:
    points: uint32 [n] code points.

  Returns:
    (classes, ranks, k): uint8 [n] SPACE, WORD, OTHER or TAG; ranks [n + k]
    (equal code points, equal ranks; never 0; then k zeros) as uint8, uint16
    or uint32, so that k = 8, 4 or 2 ranks fill 64 bits.
  """
  n = points.shape[0]
  codes = np.take(_CODES, points)
  if n and codes.min() == 0:
    _learn(points[codes == 0])
    codes = np.take(_CODES, points)
  classes = np.empty(n, np.uint8)
  np.bitwise_and(codes, 3, out=classes, casting='unsafe')
  top = int(codes.max()) >> 2 if n else 0
  if top >= 256:
    # Renumber the ranks present, in case there are few of them.
    codes >>= 2
    present = np.zeros(top + 1, np.uint32)
    present[codes] = 1
    local = np.cumsum(present, dtype=np.uint32)
    codes = np.take(local, codes) << 2
    top = int(local[-1])
  dtype = np.dtype('u1' if top < 2**8 else '<u2' if top < 2**16 else '<u4')
  k = 8 // dtype.itemsize
  ranks = np.zeros(n + k, dtype)  # little-endian, as `windows` reads them.
  np.right_shift(codes, 2, out=ranks[:n], casting='unsafe')
  return classes, ranks, k


def windows(ranks: np.ndarray, k: int) -> np.ndarray:
  """uint64 [n] view: element p holds ranks[p + j] in its bits 64 j / k on.

  Args:
    ranks: [n + k] ranks of k per 64 bits (`classify`).
    k: 8, 4 or 2.
  """
  return np.ndarray((ranks.shape[0] - k,), '<u8', buffer=ranks,
                    strides=(ranks.itemsize,))


def token_bounds(classes: np.ndarray,
                 tags: bool) -> tuple[np.ndarray, np.ndarray]:
  """Tokens of ``\\w+|[^\\w\\s]`` (with ``tags``, of the tweet pattern).

  A word token is a maximal run of WORD characters and every OTHER or TAG
  character is a token of its own, except (``tags``) a TAG not preceded by a
  WORD character and followed by one: it starts a token that runs to the end
  of the following word run. The characters before the first and after the
  last count as not WORD, as at the ends of a string.

  Args:
    classes: uint8 [n] character classes (`classify`).
    tags: keep ``#hashtag`` and ``@mention`` whole, as
      ``\\w+|(?<!\\w)[#@]\\w+|[^\\w\\s]`` does.

  Returns:
    (starts, ends): int64 [T] each, token t is characters starts[t]:ends[t],
    in order; every non-SPACE character lies in exactly one token.
  """
  if classes.shape[0] == 0:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  word = classes == WORD
  first = classes >= OTHER
  last = first.copy()
  first[0] |= word[0]
  first[1:] |= word[1:] > word[:-1]
  last[-1] |= word[-1]
  last[:-1] |= word[:-1] > word[1:]
  if tags:
    tag = classes == TAG
    tag[1:] &= ~word[:-1]
    tag[:-1] &= word[1:]
    tag[-1] = False
    at = np.flatnonzero(tag)
    first[at + 1] = False  # the word run joins the tag's token.
    last[at] = False
  return np.flatnonzero(first), np.flatnonzero(last) + 1


def _mix(keys: tuple[np.ndarray, ...]) -> np.ndarray:
  """uint64 [T] well-mixed bits of the rows of keys (to spread them)."""
  mixed = keys[0].view(np.uint64) * _MIX
  for key in keys[1:]:
    mixed ^= mixed >> np.uint64(31)
    mixed += key.view(np.uint64)
    mixed *= _MIX2
  return mixed


def first_positions(*keys: np.ndarray) -> np.ndarray:
  """Position of the first row equal to each row (exact).

  A hash table in numpy: each row goes to a slot (high bits of `_mix`), the
  slot keeps its smallest position, and a row equal to the row there has
  found its first occurrence. Rows that met a different row in their slot
  (all copies of a row meet the same one) try again, remixed, in a table
  sized for them; any left after _ROUNDS are grouped by sorting.

  Args:
    *keys: the columns, each [T] of 64 bits (int64 or uint64).

  Returns:
    int [T] ``first[t]``: the smallest t' whose columns all equal t's (int32
    if T < 2**31, else int64).
  """
  total = keys[0].shape[0]
  dtype = np.int32 if total < 2**31 - 1 else np.int64
  pending = np.arange(total, dtype=dtype)
  first = pending
  mixed = _mix(keys)
  for _ in range(_ROUNDS):
    if pending.shape[0] == 0:
      return first
    bits = max(pending.shape[0] - 1, 1).bit_length() + 1  # >= 2 T slots.
    slot = (mixed >> np.uint64(64 - bits)).astype(np.intp)
    table = np.full(1 << bits, total, dtype)
    np.minimum.at(table, slot, pending)
    found = table[slot]
    if pending.shape[0] == total:  # the first round: all rows.
      hit = keys[0][found] == keys[0]
      for key in keys[1:]:
        hit &= key[found] == key
      first = found
      miss = np.flatnonzero(~hit)
    else:
      hit = keys[0][found] == keys[0][pending]
      for key in keys[1:]:
        hit &= key[found] == key[pending]
      first[pending[hit]] = found[hit]
      miss = np.flatnonzero(~hit)
    pending = pending[miss]
    mixed = mixed[miss] * _MIX2
    mixed ^= mixed >> np.uint64(29)
  if pending.shape[0] == 0:
    return first
  # Sort what is left by all columns; a row's first copy starts its run.
  order = np.lexsort([key[pending] for key in reversed(keys)])
  new = np.zeros(order.shape[0], bool)
  new[0] = True
  for key in keys:
    row = key[pending][order]
    new[1:] |= row[1:] != row[:-1]
  group = np.cumsum(new) - 1
  lead = np.full(int(group[-1]) + 1, total, dtype)
  np.minimum.at(lead, group, pending[order])
  first[pending[order]] = lead[group]
  return first


def first_occurrences(words: np.ndarray, k: int, starts: np.ndarray,
                      ends: np.ndarray,
                      string: Callable[[int, int], str]) -> np.ndarray:
  """For each token, the position of the first token equal to it (exact).

  A token of fewer than k characters is identified by one 64-bit word of
  ranks, masked to its length (ranks are never 0, so shorter tokens keep
  zeros); one of k or more by that word, its length and its further words,
  k ranks each (the last masked); one of over k * MAX_WORDS characters by
  its string.

  Args:
    words: uint64 [n] `windows` of the ranks.
    k: ranks per word.
    starts, ends: int64 [T] the tokens (``starts < ends``).
    string: ``string(start, end)`` is the text of characters start:end.

  Returns:
    int [T] the smallest t' whose token equals token t (as `first_positions`).
  """
  bits = 64 // k
  masks = np.array([(1 << (bits * j)) - 1 for j in range(k)] + [2**64 - 1],
                   np.uint64)  # [k + 1] the first j ranks.
  lengths = ends - starts
  head = words[starts]
  head &= masks[np.minimum(lengths, k)]
  first = first_positions(head)
  long = np.flatnonzero(lengths >= k)
  if long.shape[0] == 0:
    return first
  long_lengths = lengths[long]
  # lead[i]: the first long token equal to long token i so far.
  lead = first_positions(first[long].astype(np.int64), long_lengths)
  huge = long_lengths > k * MAX_WORDS
  if huge.any():
    seen = {}
    at = np.flatnonzero(huge)
    lead[at] = np.fromiter(
        map(seen.setdefault, map(string, starts[long[at]].tolist(),
                                 ends[long[at]].tolist()), at.tolist()),
        np.int64, at.shape[0])
  active = np.flatnonzero((long_lengths > k) & ~huge)
  for offset in range(k, k * MAX_WORDS, k):
    active = active[long_lengths[active] > offset]
    if active.shape[0] == 0:
      break
    at = long[active]
    word = words[starts[at] + offset]
    word &= masks[np.minimum(lengths[at] - offset, k)]
    lead[active] = active[first_positions(lead[active].astype(np.int64),
                                          word)]
  first[long] = long[lead]
  return first

