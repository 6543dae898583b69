"""Per-code-point properties as Python's ``str`` methods see them: one table.

numpy only, no JAX. The vectorised text kernels (`linjax.text.hashed_tokens`,
`linjax.text.shapes.shape_ids`) read what ``re`` and ``str.isupper`` & co.
would say of each character from a uint8 table over all of Unicode, indexed
by code point. A 256-code-point block is filled from Python's own predicates
the first time a text contains one of its characters, so the table agrees
with the running Python's Unicode database by construction.

Bits of an entry:
  0-1  the character class of `linjax.text.fast_tokenizer` (SPACE, WORD,
       OTHER, TAG): ``\\s`` is ``str.isspace``, ``\\w`` is ``str.isalnum``
       or ``'_'``.
  UPPER, LOWER, DIGIT  ``c.isupper()``, ``c.islower()``, ``c.isdigit()``.
  CASE_DIFFERS  ``c.lower() != c.upper()``.
  RARE  title case (``c.istitle() and not c.isupper()``, e.g. "ǅ"), or a
       case mapping of several characters (e.g. "ß".upper() == "SS"): string
       rules over such characters are left to ``str`` itself.
  FILLED  always set, so that an entry of 0 means "not filled yet".

A second table, filled with the first, holds each code point's lower case
(``ord(c.lower())``; the code point itself for U+0130, the one character
whose lower case is two characters). ``str.lower`` of a text is that, code
point by code point, except for a capital sigma at the end of a word (it
becomes final sigma): `properties_and_lower` leaves that case to the
caller.
"""

from __future__ import annotations

import threading

import numpy as np

from linjax.text.fast_tokenizer import char_class
from linjax.text.fast_tokenizer import OTHER
from linjax.text.fast_tokenizer import SPACE
from linjax.text.fast_tokenizer import TAG
from linjax.text.fast_tokenizer import WORD

CLASS_BITS = 3
UPPER, LOWER, DIGIT, CASE_DIFFERS, RARE, FILLED = 4, 8, 16, 32, 64, 128

_BLOCK = 8  # log2 of the code points filled at a time.
_NUM_CODE_POINTS = 0x110000
_TABLE = np.zeros(_NUM_CODE_POINTS, np.uint8)
_LOWER = np.zeros(_NUM_CODE_POINTS, np.uint32)  # untouched pages cost nothing
_FILLED = np.zeros(_NUM_CODE_POINTS >> _BLOCK, bool)
_LOCK = threading.Lock()


def char_properties(ch: str) -> int:
  """The table entry of one character (the reference, from ``str``)."""
  bits = char_class(ch) | FILLED
  if ch.isupper():
    bits |= UPPER
  if ch.islower():
    bits |= LOWER
  if ch.isdigit():
    bits |= DIGIT
  lower, upper = ch.lower(), ch.upper()
  if lower != upper:
    bits |= CASE_DIFFERS
  if (ch.istitle() and not ch.isupper()) or len(lower) != 1 or len(upper) != 1:
    bits |= RARE
  return bits


def _block_properties(chars: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """`char_properties` and the lower case of each of ``chars``: each str
  method mapped over them at C speed, combined in numpy (a run's first
  featurisation fills a block for each 256 code points it meets)."""
  num = len(chars)
  has = lambda method: np.fromiter(map(method, chars), bool, num)
  lowers, uppers = list(map(str.lower, chars)), list(map(str.upper, chars))
  upper, space = has(str.isupper), has(str.isspace)
  word = has(str.isalnum) | np.array([c == '_' for c in chars])
  tag = np.array([c in '#@' for c in chars])
  bits = np.where(space, SPACE, np.where(word, WORD, np.where(tag, TAG,
                                                               OTHER)))
  bits |= FILLED
  bits |= np.where(upper, UPPER, 0) | np.where(has(str.islower), LOWER, 0)
  bits |= np.where(has(str.isdigit), DIGIT, 0)
  bits |= np.where(np.fromiter(map(str.__ne__, lowers, uppers), bool, num),
                   CASE_DIFFERS, 0)
  lower_len = np.fromiter(map(len, lowers), np.int64, num)
  rare = ((has(str.istitle) & ~upper) | (lower_len != 1)
          | (np.fromiter(map(len, uppers), np.int64, num) != 1))
  bits |= np.where(rare, RARE, 0)
  lower = np.array([ord(low) if n == 1 else ord(c) for c, low, n in zip(
      chars, lowers, lower_len.tolist())], np.uint32)
  return bits.astype(np.uint8), lower


def _fill(blocks: np.ndarray) -> None:
  with _LOCK:
    for block in blocks.tolist():
      if _FILLED[block]:
        continue
      first = block << _BLOCK
      chars = [chr(p) for p in range(first, first + (1 << _BLOCK))]
      (_TABLE[first:first + (1 << _BLOCK)],
       _LOWER[first:first + (1 << _BLOCK)]) = _block_properties(chars)
      _FILLED[block] = True


def properties(points: np.ndarray, out: np.ndarray | None = None
               ) -> np.ndarray:
  """uint8 [n] table entries of n code points (uint32 [n], < 0x110000).

  ``out``: a uint8 array of at least n entries to write them into (the
  first n); the result is then ``out[:n]``.
  """
  n = points.shape[0]
  props = np.take(_TABLE, points, out=None if out is None else out[:n])
  if n and props.min() < FILLED:
    missing = points[props < FILLED] >> _BLOCK
    _fill(np.flatnonzero(np.bincount(missing, minlength=_FILLED.shape[0])))
    props = np.take(_TABLE, points, out=None if out is None else out[:n])
  return props


def lower_case(points: np.ndarray) -> np.ndarray:
  """uint32 [n] the lower case of each code point, one each (see the
  module docstring: U+0130 stays, a capital sigma becomes non-final sigma).

  Call it after `properties` of the same code points (that fills the
  blocks both tables need).
  """
  return np.take(_LOWER, points)
