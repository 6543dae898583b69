"""Tokenisation: documents -> tokens, one at a time or a whole batch.

numpy only, no JAX. `tokenize` splits one document (``words_punct``,
``tweet``, ``words`` or ``whitespace``; URLs become `URL_TOKEN` in the first
two). `tokenize_batch` tokenises a corpus at once into `Tokens`: the distinct
token strings and, flat in document order, each token's index into them.

Speed: ``words_punct`` and ``tweet`` batches are tokenised over the whole
corpus at once in numpy (`linjax.fast_tokenizer`: character classes, token
bounds, exact grouping of equal tokens), except documents that may hold a URL,
which take the per-document regex; the other kinds run one regex (or
``str.split``) per document and one dict lookup per token.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import re
from typing import Callable, NamedTuple, Sequence

import numpy as np

from linjax.text import fast_tokenizer as fast

TOKENIZERS = ('words_punct', 'tweet', 'words', 'whitespace')
URL_TOKEN = '<url>'

# words_punct: Unicode words and one token per punctuation mark (the peers'
# tokenisation; "#health" is "#", "health", so it shares the word's feature).
# tweet: the same, but #hashtags and @mentions stay whole (only when not glued
# to a preceding word character). Both replace URLs by URL_TOKEN.
_URL = r"(?:https?://|ftp://|www\.)\S*[^\s.,;:!?)\]}>'\"]"
_PATTERNS = {
    'words_punct': r'\w+|[^\w\s]',
    'tweet': r'\w+|(?<!\w)[#@]\w+|[^\w\s]',
}
_PLAIN = {kind: re.compile(p) for kind, p in _PATTERNS.items()}
_WITH_URL = {kind: re.compile(_URL + '|' + p, re.IGNORECASE)
             for kind, p in _PATTERNS.items()}
URL_REGEX = re.compile(_URL, re.IGNORECASE)  # a whole URL, at a position.
_IS_URL = URL_REGEX.match
_WORDS = re.compile(r'(?u)\b\w\w+\b')  # scikit-learn's default token_pattern.
_URL_HINT = re.compile(r'://|www\.', re.IGNORECASE)  # in every URL.


def _url_aware(kind: str) -> Callable[[str], list[str]]:
  plain, with_url = _PLAIN[kind].findall, _WITH_URL[kind].findall

  def split(text: str) -> list[str]:
    # Only documents that may hold a URL pay for the URL-aware pattern.
    if _URL_HINT.search(text):
      return [URL_TOKEN if _IS_URL(t) else t for t in with_url(text)]
    return plain(text)

  return split


_SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    'words_punct': _url_aware('words_punct'),
    'tweet': _url_aware('tweet'),
    'words': _WORDS.findall,
    'whitespace': str.split,
}


def tokenize(text: str, lowercase: bool = True,
             kind: str = 'words_punct') -> list[str]:
  """Splits one document into tokens (deterministic).

  Args:
    text: the document.
    lowercase: lower-case the text first.
    kind: ``'words_punct'`` (Unicode words ``\\w+`` and each punctuation
      mark a token, URLs replaced by ``'<url>'``), ``'tweet'`` (the same with
      ``#hashtag``/``@mention`` kept whole),
      ``'words'`` (scikit-learn's default: words of 2+ characters) or
      ``'whitespace'`` (``str.split``).

  Returns:
    The tokens, in order. No token contains whitespace.
  """
  if kind not in _SPLITTERS:
    raise ValueError(f'features.tokenizer must be one of {TOKENIZERS}, '
                     f'got {kind!r}')
  return _SPLITTERS[kind](text.lower() if lowercase else text)


class Tokens(NamedTuple):
  """A tokenised batch: ``tok[t]`` indexes ``strings``; doc n has lengths[n].

  With ``num_docs`` set, ``lengths`` has one entry per segment and segment i
  belongs to document ``i % num_docs`` (linjax/text/shapes.py appends a segment of
  word shapes per document; n-grams never cross segments).
  """
  strings: list[str]  # U distinct tokens, in order of first occurrence.
  tok: np.ndarray  # int64 [T]
  lengths: np.ndarray  # int64 [N] (or [segments])
  hashes: np.ndarray | None = None  # uint32 [U] (hashing mode only).
  num_docs: int | None = None  # None: one segment per document.


def num_docs(toks: Tokens) -> int:
  """N: the documents of ``toks`` (segments belong to ``i % N``)."""
  return toks.lengths.shape[0] if toks.num_docs is None else toks.num_docs


def doc_lengths(toks: Tokens) -> np.ndarray:
  """int64 [N]: tokens of each document over all its segments."""
  n = num_docs(toks)
  return toks.lengths.reshape(-1, n).sum(0) if n else toks.lengths[:0]


def doc_ranges(toks: Tokens, cuts: Sequence[int]):
  """Yields documents cuts[i]..cuts[i+1]-1 of ``toks`` (every segment).

  Each piece shares ``toks``' strings and hashes; the token offsets are
  computed once for all pieces.
  """
  n = num_docs(toks)
  offsets = np.concatenate([[0], np.cumsum(toks.lengths)])
  for lo, hi in zip(cuts[:-1], cuts[1:]):
    pieces, lengths = [], []
    for first in range(0, toks.lengths.shape[0], n):  # each segment
      pieces.append(toks.tok[offsets[first + lo]:offsets[first + hi]])
      lengths.append(toks.lengths[first + lo:first + hi])
    yield toks._replace(tok=np.concatenate(pieces),
                        lengths=np.concatenate(lengths),
                        num_docs=None if toks.num_docs is None else hi - lo)


def tokenize_batch(texts: Sequence[str], lowercase: bool,
                   kind: str) -> Tokens:
  """Tokenises N documents as `tokenize` does each, indexed as `Tokens`.

  ``'words_punct'`` and ``'tweet'`` take a vectorised path over the whole
  corpus (`_tokenize_batch_fast`), with exactly the output of the
  per-document regex path (`_tokenize_batch_regex`, the reference), which
  it falls back to if its final check fails.

  Args:
    texts: [N] documents.
    lowercase: lower-case the texts first.
    kind: one of `TOKENIZERS`.

  Returns:
    `Tokens` of T tokens over U distinct strings (``hashes`` left None).
  """
  texts = list(map(str.lower, texts)) if lowercase else list(texts)
  if kind in _PLAIN:
    toks = _tokenize_batch_fast(texts, kind)
    if toks is not None:
      return toks
  return _tokenize_batch_regex(texts, False, kind)


def _tokenize_batch_regex(texts: Sequence[str], lowercase: bool,
                          kind: str) -> Tokens:
  """`tokenize_batch` with one regex per document: the same arguments and
  result; the reference the fast path is tested against."""
  texts = list(map(str.lower, texts)) if lowercase else list(texts)
  if kind not in _PLAIN:
    with gc_paused():
      docs = list(map(_SPLITTERS[kind], texts))
    return index_tokens(docs)
  with gc_paused():
    docs = list(map(_PLAIN[kind].findall, texts))
  for i in _url_docs(texts, '\n'.join(texts)):
    docs[i] = _SPLITTERS[kind](texts[i])
  return index_tokens(docs)


# Smaller batches are tokenised by the regex path: the vectorised one has a
# fixed cost (about 0.3 ms) that only pays off from some thousand characters.
_FAST_MIN_CHARS = 8192


def _tokenize_batch_fast(texts: list[str], kind: str) -> Tokens | None:
  """`tokenize_batch` of ``'words_punct'``/``'tweet'``, vectorised.

  The documents are joined by '\\n' and tokenised at once from character
  classes (`fast_tokenizer.token_bounds`), except the few that may hold a
  URL: those are tokenised by the regex splitter and their tokens appended
  to the joined text. Equal tokens are found exactly
  (`fast_tokenizer.first_occurrences`).

  Args:
    texts: [N] documents, already lower-cased if wanted.
    kind: ``'words_punct'`` or ``'tweet'``.

  Returns:
    The `Tokens` the regex path gives, or None (for the regex path to run)
    if the batch is too small to gain (_FAST_MIN_CHARS) or a final check
    fails.
  """
  joined = '\n'.join(texts)
  if len(joined) < _FAST_MIN_CHARS:
    return None
  doc_len = np.fromiter(map(len, texts), np.int64, len(texts))
  offsets = np.cumsum(doc_len + 1) - (doc_len + 1)  # [N] in `joined`.
  num_main = len(joined)
  url_docs = url_hint_docs(joined, offsets)
  if url_docs.shape[0]:
    url_toks = [_SPLITTERS[kind](texts[i]) for i in url_docs.tolist()]
    flat = list(itertools.chain.from_iterable(url_toks))
    joined += '\n' + ' '.join(flat)
  points = fast.code_points(joined)
  classes, ranks, k = fast.classify(points)
  if url_docs.shape[0]:
    # The URL documents' characters become spaces for token_bounds.
    url_len = doc_len[url_docs]
    classes[np.repeat(offsets[url_docs] - (np.cumsum(url_len) - url_len),
                      url_len) + np.arange(int(url_len.sum()))] = fast.SPACE
  starts, ends = fast.token_bounds(classes[:num_main], kind == 'tweet')
  # Tokens per document: those starting in [offset, offset + length].
  lengths = np.diff(np.searchsorted(starts, np.append(offsets, num_main + 1)))
  if url_docs.shape[0]:
    starts, ends = _splice(starts, ends, lengths, url_docs, url_toks, flat,
                           num_main + 1)
  first = _first_occurrences(fast.windows(ranks, k), k, starts, ends,
                             lambda a, b: joined[a:b])
  is_first = first == np.arange(first.shape[0])
  reps = np.flatnonzero(is_first)
  with gc_paused():
    strings = list(map(joined.__getitem__,
                       map(slice, starts[reps].tolist(), ends[reps].tolist())))
  if len(set(strings)) != len(strings):
    return None  # a bug; the regex path is right.
  ids = np.empty(first.shape[0], np.int64)  # set where first points.
  ids[reps] = np.arange(reps.shape[0])
  return Tokens(strings, ids[first], lengths)


def _splice(starts: np.ndarray, ends: np.ndarray, lengths: np.ndarray,
            url_docs: np.ndarray, url_toks: list[list[str]], flat: list[str],
            at: int) -> tuple[np.ndarray, np.ndarray]:
  """Inserts the URL documents' tokens, written at ``at``, in document order.

  Args:
    starts, ends: int64 [T0] the other documents' tokens, in order.
    lengths: int64 [N] tokens per document; updated in place for url_docs.
    url_docs: int64 [D] the URL documents, increasing.
    url_toks: [D] their tokens.
    flat: the T1 tokens of url_toks, written ``' '.join(flat)`` from ``at``.
    at: where that text starts.

  Returns:
    (starts, ends) int64 [T0 + T1] of all tokens, in document order.
  """
  counts = np.fromiter(map(len, url_toks), np.int64, len(url_toks))
  flat_len = np.fromiter(map(len, flat), np.int64, len(flat))
  flat_starts = at + np.cumsum(flat_len + 1) - (flat_len + 1)
  lengths[url_docs] = counts
  doc_first = np.cumsum(lengths) - lengths  # [N] first token of each doc.
  url_at = np.repeat(doc_first[url_docs] - (np.cumsum(counts) - counts),
                     counts) + np.arange(len(flat))
  is_main = np.ones(starts.shape[0] + len(flat), bool)
  is_main[url_at] = False
  out = []
  for main, url in ((starts, flat_starts), (ends, flat_starts + flat_len)):
    both = np.empty(is_main.shape[0], np.int64)
    both[is_main] = main
    both[url_at] = url
    out.append(both)
  return out[0], out[1]


def _first_occurrences(*args) -> np.ndarray:
  """`fast_tokenizer.first_occurrences` (a seam for tests)."""
  return fast.first_occurrences(*args)


def url_hint_docs(joined: str, offsets: np.ndarray) -> np.ndarray:
  """int64 [D] sorted indices of the documents that may hold a URL.

  The same documents as `_url_docs` (those matching `_URL_HINT`).

  Args:
    joined: the N documents joined by '\\n'.
    offsets: int64 [N] where each starts in ``joined``.
  """
  schemes, wwws = url_hints(joined)
  return np.unique(np.searchsorted(offsets, schemes + wwws, side='right') - 1)


def url_hints(text: str,
              lowered: str | None = None) -> tuple[list[int], list[int]]:
  """Where `_URL_HINT` matches in ``text``: the starts of '://' and of 'www.'
  (ignoring case), in two lists.

  Args:
    text: the text.
    lowered: ``text.lower()`` if at hand and of the same length (found
      faster in it).
  """
  # str.find scans much faster than re; only 'w' and 'W' match 'w' ignoring
  # case (test_tokenizer checks it over all of Unicode), and only 'W'
  # lower-cases to 'w'.
  if lowered is not None:
    www = _find_all(lowered, 'www.')
  else:  # the last three characters in any case, then the first.
    www = sorted(i - 1 for tail in ('ww.', 'wW.', 'Ww.', 'WW.')
                 for i in _find_all(text, tail)
                 if i >= 1 and text[i - 1] in 'wW')
  return _find_all(text, '://'), www


def point_url_hints(points: np.ndarray) -> tuple[list[int], list[int]]:
  """`url_hints` of a text given as its code points (uint32 [n]): the same
  two lists, found with numpy (str.find scans a wide string slowly)."""
  n = points.shape[0]
  colon = np.flatnonzero(points[:max(n - 2, 0)] == ord(':'))
  colon = colon[(points[colon + 1] == ord('/')) & (points[colon + 2] == ord('/'))]
  dot = np.flatnonzero(points[3:] == ord('.')) + 3
  www = dot
  for back in (1, 2, 3):  # 'w' or 'W' (only 'W' | 0x20 == 'w').
    www = www[(points[www - back] | 0x20) == ord('w')]
  return colon.tolist(), (www - 3).tolist()


def _find_all(text: str, sub: str) -> list[int]:
  """Every start of ``sub`` in ``text`` (overlapping ones too)."""
  found, at = [], text.find(sub)
  while at >= 0:
    found.append(at)
    at = text.find(sub, at + 1)
  return found


def _url_docs(texts: Sequence[str], joined: str) -> list[int]:
  """Sorted indices of the documents that may hold a URL (`_URL_HINT`).

  Args:
    texts: [N] documents.
    joined: ``'\\n'.join(texts)`` (a URL hint cannot span the separator),
      searched once instead of N times.
  """
  hints = [m.start() for m in _URL_HINT.finditer(joined)]
  if not hints:
    return []
  ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)
  return np.unique(np.searchsorted(ends, hints, side='right')).tolist()


@contextlib.contextmanager
def gc_paused():
  """Pauses the cyclic garbage collector while building many small lists.

  Lists of strings hold no cycles, but allocating hundreds of thousands of
  them triggers collections that rescan every live object.
  """
  enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    if enabled:
      gc.enable()


def index_tokens(docs: list[list[str]]) -> Tokens:
  """Numbers the distinct tokens of N tokenised documents -> `Tokens`."""
  lengths = np.fromiter(map(len, docs), np.int64, len(docs))
  total = int(lengths.sum())
  # Each token maps to the position of its first occurrence: one dict lookup
  # per token, done in C by map().
  first_pos = {}
  first = np.fromiter(
      map(first_pos.setdefault, itertools.chain.from_iterable(docs),
          itertools.count()), np.int64, total)
  dense = np.empty(total, np.int64)
  dense[np.fromiter(first_pos.values(), np.int64, len(first_pos))] = (
      np.arange(len(first_pos)))
  return Tokens(list(first_pos), dense[first], lengths)


def splice_docs(values: np.ndarray, lengths: np.ndarray,
                    docs: np.ndarray, more: np.ndarray,
                    more_lengths: np.ndarray):
  """Merges the per-document runs of two flat arrays, in document order.

  Args:
    values: [T] runs of N documents, ``lengths`` int64 [N] (0 for ``docs``).
    docs: int64 [D] sorted: the documents whose runs ``more`` holds.
    more: [T'] runs of those D documents, ``more_lengths`` int64 [D].

  Returns:
    ([T + T'] merged runs, int64 [N] their lengths).
  """
  added = np.zeros_like(lengths)
  added[docs] = more_lengths
  merged_lengths = lengths + added
  first = np.cumsum(merged_lengths) - merged_lengths  # [N] merged starts.
  out = np.empty(values.shape[0] + more.shape[0], values.dtype)
  # A run moves by the tokens of the other array that come before it.
  out[np.arange(values.shape[0]) + np.repeat(first - (np.cumsum(lengths)
                                                      - lengths), lengths)] = (
      values)
  more_first = np.cumsum(more_lengths) - more_lengths
  out[np.arange(more.shape[0]) + np.repeat(first[docs] - more_first,
                                           more_lengths)] = more
  return out, merged_lengths
