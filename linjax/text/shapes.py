"""Word shapes: the case pattern of each token, as extra pseudo-tokens.

numpy only, no JAX. Lower-casing (the peers' default, and ours) throws away
how a text is written: "Study Finds Coffee Cuts Risk" and "study finds coffee
cuts risk" become the same features, yet headline case, ALL-CAPS words and
numbers are strong cues of a source or genre. A shape keeps only that cue:
each word token (in its original case) maps to one of `SHAPES`; punctuation
has no shape. The shapes of a document form a second token segment, after
its words, so that `linjax.text.Featurizer` hashes, counts and weighs shape
n-grams (``features.shape_ngrams``) like word n-grams, and `analyze` names
them (e.g. ``'<Xx> <Xx>'``: two capitalised words in a row).

Shape of a token t (first matching rule):
  ``<x>``  cased letters all lower ("flu", "covid19")
  ``<d>``  all digits ("2014")
  ``<X>``  one upper-case letter ("I")
  ``<XX>`` cased letters all upper ("CDC", "RT", "H1N1")
  ``<Xx>`` capitalised: first upper, the rest lower ("Flu", "Covid19")
  ``<xX>`` other mixed case ("iPhone", "McCain")
  ``<w>``  no cased letters ("_", CJK)
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np

from linjax.text import char_table
from linjax.text import fast_tokenizer as fast
from linjax.text.fast_tokenizer import WORD
from linjax.text.tokenizer import Tokens
from linjax.text.tokenizer import index_tokens
from linjax.text.tokenizer import splice_docs
from linjax.text.tokenizer import tokenize_batch

SHAPES = ('<x>', '<Xx>', '<XX>', '<X>', '<d>', '<xX>', '<w>')
_INDEX = {s: i for i, s in enumerate(SHAPES)}


def token_shape(token: str) -> str | None:
  """The shape of one token (see the module docstring); None: punctuation."""
  if not token or not (token[0].isalnum() or token[0] == '_'):
    return None
  if token.islower():
    return '<x>'
  if token.isdigit():
    return '<d>'
  if token.isupper():
    return '<X>' if len(token) == 1 else '<XX>'
  if token[0].isupper() and token[1:].islower():
    return '<Xx>'
  return '<xX>' if token.lower() != token.upper() else '<w>'


# What `shape_ids` reads of a character: its `char_table` bits UPPER, LOWER,
# DIGIT (flipped: "not a digit"), CASE_DIFFERS and RARE, in place in its
# byte; eight characters are read at once as the bytes of a 64-bit word.
_FLAG_BITS = (char_table.UPPER | char_table.LOWER | char_table.DIGIT
              | char_table.CASE_DIFFERS | char_table.RARE)
_EVERY_BYTE = 0x0101010101010101
_FLAGS = np.uint64(_FLAG_BITS * _EVERY_BYTE)
_NOT_DIGIT = np.uint64(char_table.DIGIT * _EVERY_BYTE)
# _BYTES[j]: the low j bytes of a word (a token's first j characters).
_BYTES = np.array([(1 << (8 * j)) - 1 for j in range(8)] + [2**64 - 1],
                  np.uint64)
_WINDOW = 8  # characters per word
_LONG = 64  # tokens this long or longer: `token_shape` on the string.


def _shape_of_code(code: int) -> int:
  """`token_shape`'s rules on what `shape_ids` knows of a word token: which
  of upper-case, lower-case, non-digit, differing-case and rare characters
  it holds (bits 0-4), which of upper- and lower-case ones its tail (all
  but the first character) holds (bits 5-6), whether its first character
  is upper case (bit 7), and whether it has one character (bit 8)."""
  upper, lower, not_digit, differs = (code >> i & 1 for i in range(4))
  tail_upper, tail_lower, first_upper, single = (code >> i & 1
                                                 for i in range(5, 9))
  if lower and not upper:
    return _INDEX['<x>']
  if not not_digit:
    return _INDEX['<d>']
  if upper and not lower:
    return _INDEX['<X>' if single else '<XX>']
  if first_upper and tail_lower and not tail_upper:
    return _INDEX['<Xx>']
  return _INDEX['<xX>' if differs else '<w>']


# Indexed by a code of `_shape_of_code` plus, in bits 9-10, the class of the
# token's first character: no shape (-1) unless it is a word character.
_SHAPE_OF_CODE = np.array(
    [_shape_of_code(c & 511) if c >> 9 == WORD else -1
     for c in range(1 << 11)], np.int8)
_RARE_CODE = np.uint64(char_table.RARE >> 2)  # bit 4: decided by str.
_U8, _U2, _U3, _U5, _U9, _U32 = (np.uint64(v) for v in (8, 2, 3, 5, 9, 32))


def _either_byte(x: np.ndarray) -> np.ndarray:
  """uint64 [T], in place: the OR of the 8 bytes of each word in its low
  byte (the higher bytes are left over; mask them)."""
  x |= x >> _U32
  x |= x >> np.uint64(16)
  x |= x >> _U8
  return x


def shape_ids(props: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              token: Callable[[int, int], str]) -> np.ndarray:
  """`token_shape` of T tokens of a text at once, as indices into `SHAPES`.

  Each rule of `token_shape` is a test of which character properties
  (`linjax.text.char_table`) occur in the token and in its tail (all but the
  first character): ``str.islower`` of a string means no upper- (or title-)
  case character and at least one lower-case one, ``isdigit`` only digits,
  and so on. Which properties occur is the OR of the characters' property
  bytes, eight characters at a time as one 64-bit word. Tokens with a
  `char_table.RARE` character, or of `_LONG` characters or more, are
  decided by `token_shape` on their string.

  Args:
    props: uint8 [n] `char_table.properties` of the text's code points.
    starts, ends: int64 [T] the tokens, characters starts[t]:ends[t]
      (non-empty, within the text).
    token: ``token(start, end)`` is the text of characters start:end.

  Returns:
    int8 [T]: the index of each token's shape in `SHAPES`, -1 for a token
    without one (not starting with a word character).
  """
  n = props.shape[0]
  padded = np.zeros(n + _WINDOW, np.uint8)
  padded[:n] = props
  # words[p]: the property bytes of characters p .. p + 7 (p's the lowest).
  words = np.ndarray((n,), '<u8', buffer=padded, strides=(1,))
  length = ends - starts
  bytes_in = np.take(_BYTES, np.minimum(length, _WINDOW))
  head = np.take(words, starts)  # np.take: faster than [] on this view
  head &= bytes_in
  flags = head & _FLAGS
  bytes_in &= _NOT_DIGIT
  flags ^= bytes_in
  tail = _either_byte(flags >> _U8)
  long = np.flatnonzero(length > _WINDOW)
  for offset in range(_WINDOW, _LONG, _WINDOW):
    long = long[length[long] > offset]
    if long.shape[0] == 0:
      break
    more = np.take(words, starts[long] + offset)
    more &= _FLAGS
    bytes_in = np.take(_BYTES, np.minimum(length[long] - offset, _WINDOW))
    more &= bytes_in
    bytes_in &= _NOT_DIGIT
    more ^= bytes_in
    tail[long] |= _either_byte(more)
  # code: bits 0-4 the whole token's flags, 5-6 the tail's upper and lower,
  # 7 first upper, 8 one character, 9-10 the first character's class.
  flags &= np.uint64(0xFF)  # the first character's
  code = tail | flags
  code >>= _U2
  code &= np.uint64(31)
  tail &= np.uint64(char_table.UPPER | char_table.LOWER)
  tail <<= _U3
  code |= tail
  flags &= np.uint64(char_table.UPPER)
  flags <<= _U5
  code |= flags
  code |= (length == 1).view(np.uint8).astype(np.uint64) << np.uint64(8)
  head &= np.uint64(char_table.CLASS_BITS)
  head <<= _U9
  code |= head
  shape = np.take(_SHAPE_OF_CODE, code.view(np.int64))
  # Title case and long case mappings (RARE) and long tokens: str.
  unsure = np.flatnonzero(((code & _RARE_CODE) != 0) | (length >= _LONG))
  for t in unsure[shape[unsure] >= 0].tolist():
    shape[t] = _INDEX[token_shape(token(int(starts[t]), int(ends[t])))]
  return shape


def string_shapes(strings: Sequence[str]) -> np.ndarray:
  """int8 [U]: `token_shape` of U strings (indices into `SHAPES`, -1: none),
  through `shape_ids`."""
  text = '\n'.join(strings) + '\n'  # the last '\n' stands after '' too.
  lengths = np.fromiter(map(len, strings), np.int64, len(strings))
  starts = np.cumsum(lengths + 1) - (lengths + 1)
  props = char_table.properties(fast.code_points(text))
  return shape_ids(props, starts, starts + np.maximum(lengths, 1),
                   lambda a, b: text[a:b])


def lowercase_tokens(cased: Tokens, texts: Sequence[str],
                     kind: str) -> Tokens:
  """The tokens of the lower-cased texts, from those of the original texts.

  Equal to ``tokenize_batch(texts, True, kind)`` (``words_punct`` or
  ``tweet``). Lower-casing the distinct cased strings gives that whenever it
  keeps every token one token of its kind: a word stays word characters, a
  mark stays one non-word character. That holds unless a letter lower-cases
  to a combining mark (e.g. "İ" -> "i̇") or a token holds a capital sigma
  (its lower case depends on the next character); only the documents with
  such a token are tokenised again. Distinct strings keep first-occurrence
  order.

  Args:
    cased: ``tokenize_batch(texts, False, kind)``.
    texts: [N] the documents.
    kind: the tokenizer.
  """
  lowered = list(map(str.lower, cased.strings))
  # Capital sigma lower-cases by context (final or not): the neighbours in
  # the text decide, not the token alone.
  bad = [i for i, (token, low) in enumerate(zip(cased.strings, lowered))
         if low != token and (not _same_kind(token, low) or '\u03a3' in token)]
  if not bad:
    distinct = index_tokens([lowered])  # numbered by first appearance
    return Tokens(distinct.strings, distinct.tok[cased.tok], cased.lengths)
  num_docs = cased.lengths.shape[0]
  is_bad = np.zeros(len(lowered), bool)
  is_bad[bad] = True
  doc = np.repeat(np.arange(num_docs), cased.lengths)
  redo = np.unique(doc[is_bad[cased.tok]])
  again = tokenize_batch([texts[i] for i in redo.tolist()], True, kind)
  # One id per distinct lower-cased string (ids may skip numbers).
  table: dict[str, int] = {}
  fresh = itertools.count()
  low_id = np.fromiter(map(table.setdefault, lowered, fresh), np.int64,
                       len(lowered))
  again_id = np.fromiter(map(table.setdefault, again.strings, fresh),
                         np.int64, len(again.strings))
  keep = np.ones(num_docs, bool)
  keep[redo] = False
  lengths = np.where(keep, cased.lengths, 0)
  ids, lengths = splice_docs(low_id[cased.tok[keep[doc]]], lengths, redo,
                             again_id[again.tok], again.lengths)
  strings = list(table)
  slot = np.array(list(table.values()), np.int64)  # id of strings[i]
  first = np.full(int(slot.max(initial=-1)) + 1, ids.shape[0], np.int64)
  np.minimum.at(first, ids, np.arange(ids.shape[0]))
  used = np.flatnonzero(first < ids.shape[0])
  order = used[np.argsort(first[used], kind='stable')]
  new_id = np.full(first.shape[0], -1, np.int64)
  new_id[order] = np.arange(order.shape[0])
  string_of = dict(zip(slot.tolist(), strings))
  return Tokens([string_of[i] for i in order.tolist()], new_id[ids], lengths)


def _same_kind(token: str, lowered: str) -> bool:
  if token[0].isalnum() or token[0] == '_':
    return lowered.replace('_', 'a').isalnum()
  if token[0] in '#@' and len(token) > 1:  # a tweet tag
    return lowered[0] == token[0] and lowered[1:].replace('_', 'a').isalnum()
  return len(lowered) == 1 and not lowered.isspace()


def add_shape_segment(toks: Tokens, cased: Tokens) -> Tokens:
  """``toks`` with each document's word shapes appended as a segment.

  Args:
    toks: the N documents' tokens as featurised (e.g. lower-cased), one
      segment per document.
    cased: the same N documents tokenised in their original case.

  Returns:
    Tokens with 2N segments (words of documents 0..N-1, then their shapes),
    ``num_docs`` = N; the shape strings that occur are appended to
    ``strings`` (``hashes`` is left None: the caller hashes).
  """
  num_docs = toks.lengths.shape[0]
  if cased.lengths.shape[0] != num_docs:
    raise ValueError(f'add_shape_segment: {num_docs} documents but '
                     f'{cased.lengths.shape[0]} cased ones')
  shape_of = string_shapes(cased.strings).astype(np.int64)
  shape = shape_of[cased.tok] if cased.tok.size else np.zeros(0, np.int64)
  keep = shape >= 0
  doc = np.repeat(np.arange(num_docs), cased.lengths)[keep]
  shape = shape[keep]
  used = np.flatnonzero(np.bincount(shape, minlength=len(SHAPES)))
  new_id = np.full(len(SHAPES), -1, np.int64)
  new_id[used] = len(toks.strings) + np.arange(used.shape[0])
  return Tokens(
      strings=list(toks.strings) + [SHAPES[i] for i in used.tolist()],
      tok=np.concatenate([toks.tok, new_id[shape]]),
      lengths=np.concatenate([toks.lengths,
                              np.bincount(doc, minlength=num_docs)]),
      num_docs=num_docs)
