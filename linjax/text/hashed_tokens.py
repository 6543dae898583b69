"""Documents -> the hash of every token (and its word shape), vectorised.

numpy only, no JAX. A hashing `linjax.text.Featurizer` needs of each token
only its hash (`linjax.text.hashing`: ``poly64`` by default, ``fnv1a`` for
models saved before it) and, with word shapes, the shape of its
original-case form (`linjax.text.shapes`); it never needs the token strings
themselves. `hash_batch` computes exactly those for a batch of
``words_punct`` documents, from the joined text's code points, without
making a string per token:

  characters -> classes and case bits (`char_table`) -> token bounds
  (`fast_tokenizer.token_bounds`) -> the hash of each token of the
  lower-cased text (poly64: `poly_hash.span_hashes` over the code points,
  lower-cased by `char_table.lower_case`; fnv1a: `hashing.hash_spans` over
  the UTF-8 bytes) and shapes (`shapes.shape_ids`)

URLs become one token '<url>' where the reference tokenizer finds them
(`url_spans`). Lower-casing keeps every character's class and length except
U+0130 ("İ" becomes "i" and a combining dot): documents holding it take the
reference path (`tokenizer.tokenize_batch`, then `hashing.hash_tokens`) and
are spliced back in document order. A capital sigma lower-cases by context
(final sigma): a batch holding one lower-cases with ``str.lower``. The
result equals hashing the reference tokens; tests compare the two on every
shared corpus and on generated Unicode text.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import numpy as np

from linjax.text import char_table
from linjax.text import fast_tokenizer as fast
from linjax.text import poly_hash
from linjax.text import shapes
from linjax.text.hashing import hash_spans
from linjax.text.hashing import hash_tokens
from linjax.text.hashing import HASHES
from linjax.text.hashing import POLY64
from linjax.text.tokenizer import point_url_hints
from linjax.text.tokenizer import Tokens
from linjax.text.tokenizer import splice_docs
from linjax.text.tokenizer import tokenize_batch
from linjax.text.tokenizer import URL_REGEX
from linjax.text.tokenizer import URL_TOKEN
from linjax.text.tokenizer import url_hints

KIND = 'words_punct'  # the tokenizer this module reproduces.
# Per hash: the hashes of the shape pseudo-tokens (`shapes.SHAPES`) and '<url>'.
SHAPE_HASHES = {kind: hash_tokens(shapes.SHAPES, kind) for kind in HASHES}
URL_HASH = {kind: hash_tokens([URL_TOKEN], kind)[0] for kind in HASHES}

_DOTTED_CAPITAL_I = '\u0130'  # lower-cases to two characters.
_CAPITAL_SIGMA = '\u03a3'  # lower-cases by context.


class HashedTokens(NamedTuple):
  """N documents' tokens as hashes: words flat in document order, then shapes.

  Document n has ``lengths[n]`` word tokens and ``shape_lengths[n]`` shapes
  (its word tokens that have a shape, in order); without shapes those two
  fields are None.
  """
  hashes: np.ndarray  # [T] of each (lower-cased) token: uint64 poly64 or
  #                     uint32 fnv1a.
  lengths: np.ndarray  # int64 [N]
  shapes: np.ndarray | None = None  # int8 [S] indices into shapes.SHAPES.
  shape_lengths: np.ndarray | None = None  # int64 [N]


def hash_batch(texts: Sequence[str], lowercase: bool, with_shapes: bool,
               hash_kind: str = POLY64) -> HashedTokens:
  """The hashes (and shapes) of the ``words_punct`` tokens of N documents.

  Args:
    texts: [N] documents.
    lowercase: hash the lower-cased tokens (shapes always see the case).
    with_shapes: also give each document's word shapes.
    hash_kind: ``poly64`` or ``fnv1a`` (`hashing.HASHES`).

  Returns:
    `HashedTokens`: exactly ``hash_tokens(..., hash_kind)`` of the tokens of
    ``tokenize_batch(texts, lowercase, 'words_punct')``, and the shapes of
    ``tokenize_batch(texts, False, 'words_punct')``'s tokens, as
    `linjax.text.shapes.add_shape_segment` takes them.
  """
  texts = list(texts)
  joined = '\n'.join(texts)
  special = special_docs(texts, joined, lowercase)
  plain = emptied(texts, special)
  scanned = scan(plain, joined if plain is texts else None, lowercase,
                 with_shapes, hash_kind)
  if with_shapes:
    keep = scanned.shapes >= 0
    kept_before = np.zeros(keep.shape[0] + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    fast_part = HashedTokens(
        scanned.hashes, scanned.lengths, scanned.shapes[keep],
        np.diff(kept_before[np.cumsum(scanned.lengths)], prepend=0))
  else:
    fast_part = HashedTokens(scanned.hashes, scanned.lengths)
  if special.shape[0] == 0:
    return fast_part
  return _splice(fast_part, special,
                 _reference([texts[i] for i in special.tolist()], lowercase,
                            with_shapes, hash_kind))


def emptied(texts: list[str], docs: np.ndarray) -> list[str]:
  """``texts`` with the documents ``docs`` replaced by empty strings."""
  if docs.shape[0] == 0:
    return texts
  plain = list(texts)
  for i in docs.tolist():
    plain[i] = ''
  return plain


def _doc_offsets(texts: Sequence[str]) -> np.ndarray:
  """int64 [N] where each document starts in ``'\\n'.join(texts)``."""
  lengths = np.fromiter(map(len, texts), np.int64, len(texts))
  return np.cumsum(lengths + 1) - (lengths + 1)


def _docs_at(texts: Sequence[str], positions: list[int]) -> np.ndarray:
  """int64 sorted documents holding the given positions of the joined text."""
  if not positions:
    return np.zeros(0, np.int64)
  return np.unique(np.searchsorted(_doc_offsets(texts), positions,
                                   side='right') - 1)


def special_docs(texts: Sequence[str], joined: str,
                 lowercase: bool) -> np.ndarray:
  """int64 [D] sorted documents for the reference path: with lowercase,
  those holding U+0130 ("İ"; see the module docstring)."""
  if not (lowercase and _DOTTED_CAPITAL_I in joined):
    return np.zeros(0, np.int64)
  return _docs_at(texts, [m.start() for m in re.finditer(_DOTTED_CAPITAL_I,
                                                         joined)])


def url_spans(text: str, classes: np.ndarray,
              hints: tuple[list[int], list[int]] | None = None
              ) -> tuple[list[int], list[int]]:
  """The URLs the reference ``words_punct`` tokenizer replaces by '<url>'.

  The reference (`tokenizer.tokenize`) scans a text matching
  ``URL|\\w+|[^\\w\\s]`` (URL first) from left to right; a URL starts where
  the scan stands: not inside a word run (the character before is no word
  character, or ends an earlier URL) and not inside an earlier URL. Every
  URL holds '://' or 'www.' (`tokenizer.url_hints`), so only the few
  positions that could start a scheme or 'www.' before such a hint are
  tried, each with the reference's own `tokenizer.URL_REGEX`.

  Args:
    text: the text (documents joined by '\\n', which no URL crosses).
    classes: uint8 [n] its characters' classes (`char_table.CLASS_BITS`).
    hints: ``tokenizer.url_hints(text)`` if at hand.

  Returns:
    (starts, ends): the URLs, in order, characters starts[i]:ends[i].
  """
  schemes, wwws = url_hints(text) if hints is None else hints
  if not schemes and not wwws:
    return [], []
  # 'https://', 'http://', 'ftp://' start 5, 4 or 3 characters before '://'.
  candidates = sorted({s for h in schemes for s in (h - 5, h - 4, h - 3)
                       if s >= 0}.union(wwws))
  starts, ends, covered = [], [], 0
  word = fast.WORD
  for s in candidates:
    if s < covered or (s > covered and classes[s - 1] == word):
      continue
    match = URL_REGEX.match(text, s)
    if match:
      starts.append(s)
      ends.append(match.end())
      covered = match.end()
  return starts, ends


class Scan(NamedTuple):
  """A batch of documents that need no reference path, scanned (`scan`).

  T tokens in document order; character offsets are into the documents
  joined by '\\n'.
  """
  starts: np.ndarray  # int64 [T] first character of each token.
  ends: np.ndarray  # int64 [T] one past its last (a URL's: the URL's).
  urls: np.ndarray  # int64 [K] the tokens that are URLs ('<url>').
  hashes: np.ndarray  # [T] each token's hash (see `HashedTokens`).
  lengths: np.ndarray  # int64 [N] tokens per document.
  shapes: np.ndarray | None  # int8 [T] shape index, -1: none (or None).


def scan(texts: list[str], joined: str | None, lowercase: bool,
         with_shapes: bool, hash_kind: str = POLY64) -> Scan:
  """Tokens, hashes and shapes of documents that need no reference path.

  Args:
    texts: [N] documents, none of them `special_docs`.
    joined: ``'\\n'.join(texts)`` if at hand, else None.
    lowercase, with_shapes, hash_kind: as in `hash_batch`.

  Returns:
    `Scan`.

  Raises:
    UnicodeEncodeError: fnv1a only, on a lone surrogate (it has no UTF-8),
      as `hashing.hash_tokens` does.
  """
  if hash_kind not in HASHES:
    raise ValueError(f'hash_kind must be one of {HASHES}, got {hash_kind!r}')
  if joined is None:
    joined = '\n'.join(texts)
  points = fast.code_points(joined)
  props = char_table.properties(points)
  classes = props & np.uint8(char_table.CLASS_BITS)
  url_starts, url_ends = url_spans(joined, classes, point_url_hints(points))
  at = np.array(url_starts, np.int64)
  if url_starts:
    # A URL becomes one token at its first character, as if punctuation.
    inner = np.array(url_ends, np.int64) - at - 1  # characters after the first
    classes[np.repeat(at + 1 - (np.cumsum(inner) - inner), inner)
            + np.arange(int(inner.sum()))] = fast.SPACE
    classes[at] = fast.OTHER
    props = props.copy()
    props[at] = (props[at] & ~np.uint8(char_table.CLASS_BITS)) | fast.OTHER
  starts, ends = fast.token_bounds(classes, tags=False)
  # Tokens per document: those starting in [offset, offset + length].
  lengths = np.diff(np.searchsorted(
      starts, np.append(_doc_offsets(texts), len(joined) + 1)))
  if hash_kind == POLY64:
    hashes = poly_hash.span_hashes(_lowered_points(texts, joined, points)
                                   if lowercase else points, starts, ends)
  else:
    hashes = _fnv_hashes(texts, joined, lowercase, points.shape[0], starts,
                         ends)
  urls = np.searchsorted(starts, at)
  hashes[urls] = URL_HASH[hash_kind]
  shape = None
  if with_shapes:
    shape = shapes.shape_ids(props, starts, ends, lambda a, b: joined[a:b])
  if url_starts:  # a URL's token spans the whole URL
    ends[urls] = url_ends
  return Scan(starts, ends, urls, hashes, lengths, shape)


def _lowered_points(texts: list[str], joined: str,
                    points: np.ndarray) -> np.ndarray:
  """uint32 [n] the code points of ``'\\n'.join(t.lower() for t in texts)``
  (no `special_docs` among ``texts``: the same length as ``joined``)."""
  if _CAPITAL_SIGMA in joined:  # final sigma: str.lower knows the context.
    return fast.code_points('\n'.join(map(str.lower, texts)))
  return char_table.lower_case(points)


def _fnv_hashes(texts: list[str], joined: str, lowercase: bool, n: int,
                starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
  """uint32 [T] FNV-1a of the tokens' UTF-8 bytes in the (lower-cased) text
  (``n`` characters)."""
  # Lower-casing document by document keeps ASCII documents on str's fast
  # path; '\n' does not change how Python lower-cases a final sigma.
  source = '\n'.join(map(str.lower, texts)) if lowercase else joined
  data = np.frombuffer(source.encode('utf-8'), np.uint8)
  if data.shape[0] == n:  # ASCII: a byte per character.
    byte_starts, byte_lengths = starts, ends - starts
  else:  # A character starts at each byte that is not a continuation byte.
    starts_char = np.empty(data.shape[0] + 1, bool)
    np.not_equal(data & np.uint8(0xC0), 0x80, out=starts_char[:-1])
    starts_char[-1] = True  # and one past the last, for the ends.
    byte_at = np.flatnonzero(starts_char)
    byte_starts = byte_at[starts]
    byte_lengths = byte_at[ends] - byte_starts
  return hash_spans(data, byte_starts, byte_lengths)


def _reference(texts: list[str], lowercase: bool, with_shapes: bool,
               hash_kind: str) -> HashedTokens:
  """`hash_batch` from the reference tokenizer and `hash_tokens`."""
  toks = tokenize_batch(texts, lowercase, KIND)
  hashes = hash_tokens(toks.strings, hash_kind)[toks.tok]
  if not with_shapes:
    return HashedTokens(hashes, toks.lengths)
  cased = tokenize_batch(texts, False, KIND) if lowercase else toks
  shape = _token_shapes(cased)
  keep = shape >= 0
  doc = np.repeat(np.arange(len(texts)), cased.lengths)[keep]
  return HashedTokens(hashes, toks.lengths, shape[keep],
                      np.bincount(doc, minlength=len(texts)).astype(np.int64))


def _token_shapes(toks: Tokens) -> np.ndarray:
  """int8 [T] shape index of each token (-1: none), via `token_shape`."""
  index = {s: i for i, s in enumerate(shapes.SHAPES)}
  of_string = np.fromiter(
      (index.get(shapes.token_shape(s), -1) for s in toks.strings), np.int8,
      len(toks.strings))
  return of_string[toks.tok]


def _splice(fast_part: HashedTokens, special: np.ndarray,
            ref: HashedTokens) -> HashedTokens:
  """Puts the reference documents' tokens in their places (document order).

  Args:
    fast_part: all N documents, the ``special`` ones empty.
    special: int64 [D] sorted documents that ``ref`` holds, in that order.
    ref: the D special documents.
  """
  hashes, lengths = splice_docs(fast_part.hashes, fast_part.lengths,
                                    special, ref.hashes, ref.lengths)
  if fast_part.shapes is None:
    return HashedTokens(hashes, lengths)
  shape, shape_lengths = splice_docs(
      fast_part.shapes, fast_part.shape_lengths, special, ref.shapes,
      ref.shape_lengths)
  return HashedTokens(hashes, lengths, shape, shape_lengths)
