"""Tokenisation: documents -> tokens, one at a time or a whole batch.

numpy only, no JAX. `tokenize` splits one document (``words_punct``,
``tweet``, ``words`` or ``whitespace``; URLs become `URL_TOKEN` in the first
two). `tokenize_batch` tokenises a corpus at once into `Tokens`: the distinct
token strings and, flat in document order, each token's index into them.

Speed: the Python work per token is one regex match and one dict lookup.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import re
from typing import Callable, NamedTuple, Sequence

import numpy as np

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
_IS_URL = re.compile(_URL, re.IGNORECASE).match
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
  """A tokenised batch: ``tok[t]`` indexes ``strings``; doc n has lengths[n]."""
  strings: list[str]  # U distinct tokens, in order of first occurrence.
  tok: np.ndarray  # int64 [T]
  lengths: np.ndarray  # int64 [N]
  hashes: np.ndarray | None = None  # uint32 [U] (hashing mode only).


def tokenize_batch(texts: Sequence[str], lowercase: bool,
                   kind: str) -> Tokens:
  """Tokenises N documents as `tokenize` does each, indexed as `Tokens`.

  Args:
    texts: [N] documents.
    lowercase: lower-case the texts first.
    kind: one of `TOKENIZERS`.

  Returns:
    `Tokens` of T tokens over U distinct strings (``hashes`` left None).
  """
  texts = list(map(str.lower, texts)) if lowercase else list(texts)
  if kind not in _PLAIN:
    with gc_paused():
      docs = list(map(_SPLITTERS[kind], texts))
    return index_tokens(docs)
  with gc_paused():
    docs = list(map(_PLAIN[kind].findall, texts))
  # Documents that may hold a URL, found in one search over the corpus, are
  # tokenised again by the URL-aware splitter.
  joined = '\n'.join(texts)  # a URL hint cannot span the separator.
  hints = [m.start() for m in _URL_HINT.finditer(joined)]
  if hints:
    ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)
    for i in np.unique(np.searchsorted(ends, hints, side='right')).tolist():
      docs[i] = _SPLITTERS[kind](texts[i])
  return index_tokens(docs)


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
