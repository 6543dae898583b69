"""Text to features on the host: tokens, n-grams, hashing, vocabulary, weights.

Layer 1 of linjax (numpy only, no JAX). A `Featurizer` turns raw documents into
a `linjax.csr.CsrFeatures` corpus (N documents, F features):

  texts -> tokens -> word n-grams 1..n -> feature ids -> per-document counts
        -> tf | binary | tfidf | sublinear_tfidf -> optional L2 normalisation

Feature ids come either from an explicit vocabulary (``buckets == 0``; ids
ordered by training count, ties by string) or from the hashing trick: a token
hashes to the 32-bit FNV-1a of its UTF-8 bytes, an n-gram combines its tokens'
hashes as fastText does (``h = h * 116049371 + h_next`` in uint64) and its id is
``h % buckets``; unigrams and n-grams share the bucket space. The hash is
stable across processes and machines (Python's ``hash`` is salted).

Speed: the Python work per token is one regex match and one dict lookup;
hashing, n-grams, de-duplication and weighting are vectorised over the corpus.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import re
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from linjax import csr

TOKENIZERS = ('words_punct', 'tweet', 'words', 'whitespace')
WEIGHTINGS = ('tf', 'binary', 'tfidf', 'sublinear_tfidf')
NORMALIZATIONS = ('l2', 'none')
URL_TOKEN = '<url>'
NGRAM_MULTIPLIER = 116049371  # fastText's n-gram hash combiner.
NAMES_PER_BUCKET = 3  # training strings remembered per hash bucket.

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193

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


def fnv1a_32(token: str) -> int:
  """32-bit FNV-1a of the UTF-8 bytes of ``token`` (reference, one token)."""
  h = _FNV_OFFSET
  for byte in token.encode('utf-8'):
    h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
  return h


def hash_tokens(tokens: Sequence[str]) -> np.ndarray:
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


class _Tokens(NamedTuple):
  """A tokenised batch: ``tok[t]`` indexes ``strings``; doc n has lengths[n]."""
  strings: list[str]  # U distinct tokens, in order of first occurrence.
  tok: np.ndarray  # int64 [T]
  lengths: np.ndarray  # int64 [N]
  hashes: np.ndarray | None = None  # uint32 [U] (hashing mode only).


def _tokenize_batch(texts: Sequence[str], lowercase: bool,
                    kind: str) -> _Tokens:
  texts = list(map(str.lower, texts)) if lowercase else list(texts)
  if kind not in _PLAIN:
    with _gc_paused():
      docs = list(map(_SPLITTERS[kind], texts))
    return _index_tokens(docs)
  with _gc_paused():
    docs = list(map(_PLAIN[kind].findall, texts))
  # Documents that may hold a URL, found in one search over the corpus, are
  # tokenised again by the URL-aware splitter.
  joined = '\n'.join(texts)  # a URL hint cannot span the separator.
  hints = [m.start() for m in _URL_HINT.finditer(joined)]
  if hints:
    ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)
    for i in np.unique(np.searchsorted(ends, hints, side='right')).tolist():
      docs[i] = _SPLITTERS[kind](texts[i])
  return _index_tokens(docs)


@contextlib.contextmanager
def _gc_paused():
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


def _index_tokens(docs: list[list[str]]) -> _Tokens:
  """Numbers the distinct tokens of tokenised documents."""
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
  return _Tokens(list(first_pos), dense[first], lengths)


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


def _exact_keys(tok: np.ndarray, starts: np.ndarray, n: int,
                base: int) -> np.ndarray:
  """Mixed-radix key of each n-gram (exact; Python ints if int64 overflows)."""
  dtype = np.int64 if base ** n < 2**63 else object
  key = tok[starts].astype(dtype)
  for j in range(1, n):
    key = key * base + tok[starts + j].astype(dtype)
  return key


def _key_digits(keys: np.ndarray, n: int, base: int) -> np.ndarray:
  """Inverse of `_exact_keys`: int64 [G, n] token indices."""
  digits = np.empty((keys.shape[0], n), np.int64)
  for j in range(n - 1, -1, -1):
    digits[:, j] = keys % base
    keys = keys // base
  return digits


def smooth_idf(df: np.ndarray, num_docs: int) -> np.ndarray:
  """float64 [F] ``ln((1 + N) / (1 + df)) + 1`` (scikit-learn's smooth idf)."""
  return np.log((1.0 + num_docs) / (1.0 + df)) + 1.0


def count_features(doc: np.ndarray, ids: np.ndarray, num_docs: int,
                   num_features: int) -> csr.CsrFeatures:
  """Merges feature occurrences into per-document counts.

  Args:
    doc: int [M] document of each occurrence.
    ids: int [M] feature id of each occurrence.
    num_docs: N.
    num_features: F.

  Returns:
    CsrFeatures with ids unique and ascending within each row, weights the
    counts; a document without occurrences is an empty row.
  """
  key = doc.astype(np.int64) * num_features + ids
  key.sort()
  new = np.empty(key.shape[0], bool)
  new[:1] = True
  np.not_equal(key[1:], key[:-1], out=new[1:])
  first = np.flatnonzero(new)
  counts = np.diff(np.append(first, key.shape[0]))
  key = key[first]
  row = key // num_features
  indptr = np.zeros(num_docs + 1, np.int64)
  np.cumsum(np.bincount(row, minlength=num_docs), out=indptr[1:])
  return csr.CsrFeatures(indptr, (key - row * num_features).astype(np.int32),
                         counts.astype(np.float32), int(num_features))


def apply_weighting(counts: csr.CsrFeatures, weighting: str,
                    idf: np.ndarray | None = None,
                    normalize: str = 'l2') -> csr.CsrFeatures:
  """Re-weights a counts corpus.

  Args:
    counts: CsrFeatures of raw counts (ids unique within a row).
    weighting: ``'tf'`` (counts), ``'binary'`` (1), ``'tfidf'`` (count * idf)
      or ``'sublinear_tfidf'`` ((1 + ln count) * idf).
    idf: float [F], needed by the two TF-IDF weightings.
    normalize: ``'l2'`` divides each row by its L2 norm (empty rows stay
      zero); ``'none'`` leaves it.

  Returns:
    CsrFeatures with the same structure, float32 weights.
  """
  w = counts.weights.astype(np.float64)
  if weighting == 'binary':
    w = np.ones_like(w)
  elif weighting == 'sublinear_tfidf':
    w = (1.0 + np.log(w)) * idf[counts.ids]
  elif weighting == 'tfidf':
    w = w * idf[counts.ids]
  elif weighting != 'tf':
    raise ValueError(f'features.weighting must be one of {WEIGHTINGS}, '
                     f'got {weighting!r}')
  if normalize == 'l2':
    row = np.repeat(np.arange(counts.num_docs), counts.row_lengths())
    norm = np.sqrt(np.bincount(row, weights=w * w, minlength=counts.num_docs))
    w = w / np.where(norm > 0, norm, 1.0)[row]
  elif normalize != 'none':
    raise ValueError(f'features.normalize must be one of {NORMALIZATIONS}, '
                     f'got {normalize!r}')
  return counts._replace(weights=w.astype(np.float32))


_DEFAULTS = dict(lowercase=True, tokenizer='words_punct', ngrams=1,
                 buckets=2**20, min_count=1, max_vocab=0, weighting='tf',
                 normalize='l2')


def _check_settings(s: Mapping[str, Any]) -> None:
  """Raises ValueError naming the ``features.*`` key of a bad value."""
  for key in s:
    if key not in _DEFAULTS:
      raise ValueError(f'features.{key} is not a featurizer setting; known: '
                       f'{", ".join(_DEFAULTS)}')
  if not isinstance(s['lowercase'], (bool, np.bool_)):
    raise ValueError(f'features.lowercase must be True or False, got '
                     f'{s["lowercase"]!r}')
  for key, choices in (('tokenizer', TOKENIZERS), ('weighting', WEIGHTINGS),
                       ('normalize', NORMALIZATIONS)):
    if s[key] not in choices:
      raise ValueError(f'features.{key} must be one of {choices}, got '
                       f'{s[key]!r}')
  for key, low in (('ngrams', 1), ('buckets', 0), ('min_count', 1),
                   ('max_vocab', 0)):
    value = s[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise ValueError(f'features.{key} must be an integer, got {value!r}')
    if value < low:
      raise ValueError(f'features.{key} must be >= {low}, got {value}')
  if s['buckets'] >= 2**31:
    raise ValueError(f'features.buckets must be < 2**31 (int32 ids), got '
                     f'{s["buckets"]}')


def _sort_buckets_by_count(bucket: np.ndarray,
                           count: np.ndarray) -> np.ndarray:
  """Argsort by bucket, then count (descending), then position."""
  num = bucket.shape[0]
  values = np.unique(count)
  rank = values.shape[0] - 1 - np.searchsorted(values, count)  # 0: largest.
  radix = values.shape[0] * num
  if num and (int(bucket.max()) + 1) * radix < 2**63:
    # One value sort of a packed int64 key: much faster than lexsort.
    key = (bucket * values.shape[0] + rank) * num + np.arange(num)
    return np.sort(key) % num
  return np.lexsort((np.arange(num), rank, bucket))


class Featurizer:
  """Documents -> `CsrFeatures`, with the settings of ``config.features``.

  Hashing mode (``buckets > 0``) needs no fitting for ``tf``/``binary``;
  `fit` still records, per bucket, up to `NAMES_PER_BUCKET` training strings
  (most frequent first) for `feature_name`. Vocabulary mode (``buckets == 0``)
  keeps every n-gram seen at least ``min_count`` times in training, at most
  ``max_vocab`` of them (0: all), ordered by count then string. The TF-IDF
  weightings fit the document frequencies on the training texts only.
  """

  def __init__(self, *, lowercase: bool = True, tokenizer: str = 'words_punct',
               ngrams: int = 1, buckets: int = 2**20, min_count: int = 1,
               max_vocab: int = 0, weighting: str = 'tf',
               normalize: str = 'l2'):
    settings = dict(lowercase=lowercase, tokenizer=tokenizer, ngrams=ngrams,
                    buckets=buckets, min_count=min_count, max_vocab=max_vocab,
                    weighting=weighting, normalize=normalize)
    _check_settings(settings)
    self._settings = {k: (bool(v) if k == 'lowercase' else
                          int(v) if isinstance(v, (int, np.integer)) else v)
                      for k, v in settings.items()}
    for key, value in self._settings.items():
      setattr(self, key, value)
    self._fitted = False
    self._vocab: list[str] | None = None  # id -> n-gram string.
    self._lookup = None  # vocabulary mode: see _set_vocabulary.
    self._df: np.ndarray | None = None  # int64 [F] document frequencies.
    self._num_docs = 0
    self._idf: np.ndarray | None = None
    # Hashing mode names: token table, bucket [K] (sorted), grams [K, n].
    self._names: tuple[list[str], np.ndarray, np.ndarray] | None = None

  @classmethod
  def from_config(cls, config: Any) -> Featurizer:
    """From ``config.features`` (a ConfigDict or mapping of the same keys)."""
    if hasattr(config, 'to_dict'):
      config = config.to_dict()
    config = dict(config)
    unknown = [k for k in config if k not in _DEFAULTS]
    if unknown:
      raise ValueError(f'features.{unknown[0]} is not a featurizer setting; '
                       f'known: {", ".join(_DEFAULTS)}')
    return cls(**config)

  @property
  def settings(self) -> dict[str, Any]:
    return dict(self._settings)

  @property
  def hashing(self) -> bool:
    return self.buckets > 0

  @property
  def num_features(self) -> int:
    """F: the number of buckets, or the vocabulary size once fitted."""
    if self.hashing:
      return self.buckets
    self._require_fit('num_features')
    return len(self._vocab)

  def _require_fit(self, what: str) -> None:
    needs_fit = not self.hashing or self.weighting.endswith('tfidf')
    if needs_fit and not self._fitted:
      raise ValueError(f'Featurizer.{what}: call fit() first (a vocabulary or '
                       'IDF weighting is learned from the training texts).')

  # -- pipeline ------------------------------------------------------------

  def _tokens(self, texts: Sequence[str]) -> _Tokens:
    if isinstance(texts, str):
      raise TypeError('Featurizer expects a sequence of documents, got one '
                      'string; wrap it in a list.')
    toks = _tokenize_batch(texts, self.lowercase, self.tokenizer)
    if self.hashing:
      toks = toks._replace(hashes=hash_tokens(toks.strings))
    return toks

  def _occurrences(self, toks: _Tokens):
    """Feature occurrences: (ids int64 [M], starts int64 [M], orders [M])."""
    ids, starts, orders = [], [], []
    if self.hashing:
      flat = toks.hashes[toks.tok].astype(np.uint64)
      gram = flat
      mult = np.uint64(NGRAM_MULTIPLIER)
      for n in range(1, self.ngrams + 1):
        if n > 1:
          gram = gram[:-1] * mult + flat[n - 1:]  # wraps modulo 2**64.
        start = ngram_starts(toks.lengths, n)
        ids.append((gram[start] % np.uint64(self.buckets)).astype(np.int64))
        starts.append(start)
        orders.append(np.full(start.shape[0], n, np.int8))
    else:
      table, keys_by_order = self._lookup
      tmap = np.fromiter(map(table.get, toks.strings, itertools.repeat(-1)),
                         np.int64, len(toks.strings))
      flat = tmap[toks.tok]
      unknown_before = np.concatenate([[0], np.cumsum(flat < 0)])
      for n in range(1, self.ngrams + 1):
        start = ngram_starts(toks.lengths, n)
        start = start[unknown_before[start + n] == unknown_before[start]]
        sorted_keys, sorted_ids = keys_by_order.get(n, (np.zeros(0, np.int64),
                                                        np.zeros(0, np.int64)))
        if sorted_keys.shape[0] == 0:
          continue
        key = _exact_keys(flat, start, n, len(table))
        where = np.minimum(np.searchsorted(sorted_keys, key),
                           sorted_keys.shape[0] - 1)
        found = sorted_keys[where] == key
        ids.append(sorted_ids[where[found]])
        starts.append(start[found])
        orders.append(np.full(int(found.sum()), n, np.int8))
    if not ids:
      return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.int8),)
    return np.concatenate(ids), np.concatenate(starts), np.concatenate(orders)

  def _counts(self, toks: _Tokens, ids: np.ndarray,
              starts: np.ndarray) -> csr.CsrFeatures:
    doc_of_token = np.repeat(np.arange(toks.lengths.shape[0]), toks.lengths)
    return count_features(doc_of_token[starts], ids, toks.lengths.shape[0],
                          self.num_features)

  def _weigh(self, counts: csr.CsrFeatures) -> csr.CsrFeatures:
    return apply_weighting(counts, self.weighting, self._idf, self.normalize)

  # -- fitting -------------------------------------------------------------

  def _distinct_ngrams(self, toks: _Tokens):
    """Yields (n, token indices int64 [G, n], counts int64 [G]) per order."""
    base = max(len(toks.strings), 1)
    for n in range(1, self.ngrams + 1):
      if n == 1:
        counts = np.bincount(toks.tok, minlength=len(toks.strings))
        yield n, np.arange(len(toks.strings))[:, None], counts
        continue
      keys = _exact_keys(toks.tok, ngram_starts(toks.lengths, n), n, base)
      keys, counts = np.unique(keys, return_counts=True)
      yield n, _key_digits(keys, n, base), counts.astype(np.int64)

  def _fit_vocabulary(self, toks: _Tokens) -> None:
    strings, counts = [], []
    words = np.array(toks.strings + [''], dtype=object)[:-1]  # 1-D, never 2-D.
    for _, digits, count in self._distinct_ngrams(toks):
      keep = count >= self.min_count
      if self.max_vocab and keep.sum() > self.max_vocab:
        # Only n-grams tied with or above the max_vocab-th count can make it.
        cutoff = np.sort(count[keep])[::-1][self.max_vocab - 1]
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
          f'features.min_count={self.min_count}); lower min_count, or give '
          'texts with tokens.')
    by_string = np.empty(len(strings), np.int64)
    by_string[sorted(range(len(strings)), key=strings.__getitem__)] = (
        np.arange(len(strings)))
    order = np.lexsort((by_string, -counts))  # count down, then string.
    if self.max_vocab:
      order = order[:self.max_vocab]
    self._set_vocabulary([strings[i] for i in order.tolist()])

  def _set_vocabulary(self, vocab: list[str]) -> None:
    """Builds the id lookup: token table and sorted n-gram keys per order."""
    self._vocab = vocab
    with _gc_paused():
      grams = _index_tokens([v.split(' ') for v in vocab])
    table = dict(zip(grams.strings, itertools.count()))
    starts = np.cumsum(grams.lengths) - grams.lengths
    keys_by_order = {}
    for n in np.unique(grams.lengths).tolist():
      rows = np.flatnonzero(grams.lengths == n)
      keys = _exact_keys(grams.tok, starts[rows], n, len(table))
      order = np.argsort(keys)  # keys are distinct.
      keys_by_order[n] = (keys[order], rows[order])
    self._lookup = (table, keys_by_order)

  def _fit_bucket_names(self, toks: _Tokens) -> None:
    """Keeps, per bucket, the NAMES_PER_BUCKET most frequent n-grams."""
    token_hash = toks.hashes.astype(np.uint64)
    mult = np.uint64(NGRAM_MULTIPLIER)
    buckets, counts, grams = [], [], []
    for n, digits, count in self._distinct_ngrams(toks):
      h = token_hash[digits[:, 0]]
      for j in range(1, n):
        h = h * mult + token_hash[digits[:, j]]
      buckets.append((h % np.uint64(self.buckets)).astype(np.int64))
      counts.append(count)
      padded = np.full((digits.shape[0], self.ngrams), -1, np.int64)
      padded[:, :n] = digits
      grams.append(padded)
    bucket = np.concatenate(buckets)
    count = np.concatenate(counts)
    gram = np.concatenate(grams)
    order = _sort_buckets_by_count(bucket, count)
    bucket = bucket[order]
    group_start = np.flatnonzero(np.diff(bucket, prepend=-1))
    rank = np.arange(bucket.shape[0]) - np.repeat(
        group_start, np.diff(np.append(group_start, bucket.shape[0])))
    keep = order[rank < NAMES_PER_BUCKET]
    gram = gram[keep]
    # Keep only the tokens these n-grams use, renumbered in first-use order.
    used = np.zeros(len(toks.strings) + 1, bool)
    used[gram] = True  # gram == -1 (padding) marks the extra last slot.
    used = used[:-1]
    new_index = np.append(np.cumsum(used) - 1, -1)
    table = [toks.strings[t] for t in np.flatnonzero(used).tolist()]
    self._names = (table, bucket[rank < NAMES_PER_BUCKET], new_index[gram])

  def fit(self, texts: Sequence[str]) -> Featurizer:
    """Learns the vocabulary or bucket names, and the IDF, from ``texts``."""
    self._fit_tokens(self._tokens(texts))
    return self

  def _fit_tokens(self, toks: _Tokens) -> csr.CsrFeatures | None:
    if self.hashing:
      self._fit_bucket_names(toks)
    else:
      self._fit_vocabulary(toks)
    self._fitted = True
    self._df, self._idf, self._num_docs = None, None, 0
    if not self.weighting.endswith('tfidf'):
      return None
    counts = self._counts(toks, *self._occurrences(toks)[:2])
    self._set_df(np.bincount(counts.ids, minlength=self.num_features),
                 counts.num_docs)
    return counts

  def _set_df(self, df: np.ndarray, num_docs: int) -> None:
    self._df = df.astype(np.int64)
    self._num_docs = int(num_docs)
    self._idf = smooth_idf(self._df, self._num_docs)

  def transform(self, texts: Sequence[str]) -> csr.CsrFeatures:
    """Featurises ``texts`` -> CsrFeatures [N documents, F features]."""
    return self._transform_tokens(self._tokens(texts))

  def _transform_tokens(self, toks: _Tokens) -> csr.CsrFeatures:
    self._require_fit('transform')
    return self._weigh(self._counts(toks, *self._occurrences(toks)[:2]))

  def fit_transform(self, texts: Sequence[str]) -> csr.CsrFeatures:
    """`fit` then `transform` on the same texts, tokenising them once."""
    toks = self._tokens(texts)
    counts = self._fit_tokens(toks)
    if counts is None:
      return self._transform_tokens(toks)
    return self._weigh(counts)

  # -- explanations --------------------------------------------------------

  def feature_name(self, feature_id: int) -> str:
    """The n-gram string of a feature id.

    A hash bucket reads as the training strings seen in it joined with
    ``' | '`` (most frequent first), or ``'<bucket 123>'`` if none.
    """
    feature_id = int(feature_id)
    if not 0 <= feature_id < self.num_features:
      raise ValueError(f'feature id {feature_id} is outside [0, '
                       f'{self.num_features})')
    if not self.hashing:
      return self._vocab[feature_id]
    if self._names is not None:
      table, bucket, grams = self._names
      lo, hi = np.searchsorted(bucket, [feature_id, feature_id + 1])
      if hi > lo:
        return ' | '.join(' '.join(table[t] for t in row if t >= 0)
                          for row in grams[lo:hi].tolist())
    return f'<bucket {feature_id}>'

  def feature_names(self, feature_ids: Sequence[int]) -> list[str]:
    """`feature_name` of each id in ``feature_ids``."""
    return [self.feature_name(i) for i in np.asarray(feature_ids).tolist()]

  def analyze(self, text: str) -> list[tuple[str, int, float]]:
    """Explains one document: (n-gram string, feature id, final weight).

    Items are the distinct n-grams in reading order; n-grams outside the
    vocabulary are left out. When several strings share a feature (a hash
    collision, or repeats), the feature's final weight is split among them in
    proportion to their counts, so ``sum(weight * W[id]) + b`` over the items
    equals the logits of ``transform([text])``.
    """
    self._require_fit('analyze')
    toks = self._tokens([text])
    ids, starts, orders = self._occurrences(toks)
    counts = self._counts(toks, ids, starts)
    weighted = self._weigh(counts)
    weight_of = dict(zip(weighted.ids.tolist(), weighted.weights.tolist()))
    count_of = dict(zip(counts.ids.tolist(), counts.weights.tolist()))
    words = [toks.strings[t] for t in toks.tok.tolist()]
    items: dict[str, list] = {}
    for i in np.lexsort((orders, starts)).tolist():
      s, n = int(starts[i]), int(orders[i])
      item = items.setdefault(' '.join(words[s:s + n]), [int(ids[i]), 0])
      item[1] += 1
    return [(string, fid, weight_of[fid] * c / count_of[fid])
            for string, (fid, c) in items.items()]

  # -- persistence ---------------------------------------------------------

  def to_dict(self) -> dict[str, Any]:
    """JSON-serialisable state; `from_dict` featurises identically.

    IDF is stored as sparse document frequencies (``ids``, ``counts``,
    ``num_docs``) from which the idf vector is recomputed exactly. Bucket
    names are a token table, the bucket of each name, and the names' token
    indices row-major [K, ngrams] (-1 pads an n-gram shorter than ngrams).
    """
    d: dict[str, Any] = {'type': 'linjax.text.Featurizer', 'version': 1,
                         'settings': self.settings, 'fitted': self._fitted,
                         'vocabulary': self._vocab, 'document_frequency': None,
                         'bucket_names': None}
    if self._df is not None:
      nonzero = np.flatnonzero(self._df)
      d['document_frequency'] = {'num_docs': self._num_docs,
                                 'ids': nonzero.tolist(),
                                 'counts': self._df[nonzero].tolist()}
    if self._names is not None:
      table, bucket, grams = self._names
      d['bucket_names'] = {'tokens': table, 'buckets': bucket.tolist(),
                           'grams': grams.ravel().tolist()}  # [K, ngrams]
    return d

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> Featurizer:
    """Inverse of `to_dict`."""
    if d.get('type') != 'linjax.text.Featurizer':
      raise ValueError('not a saved linjax Featurizer (missing '
                       "type='linjax.text.Featurizer')")
    featurizer = cls(**d['settings'])
    featurizer._fitted = bool(d['fitted'])
    if d.get('vocabulary') is not None:
      featurizer._set_vocabulary(list(d['vocabulary']))
    df = d.get('document_frequency')
    if df is not None:
      dense = np.zeros(featurizer.num_features, np.int64)
      dense[np.asarray(df['ids'], np.int64)] = df['counts']
      featurizer._set_df(dense, df['num_docs'])
    names = d.get('bucket_names')
    if names is not None:
      grams = np.asarray(names['grams'], np.int64).reshape(
          -1, featurizer.ngrams)
      featurizer._names = (list(names['tokens']),
                           np.asarray(names['buckets'], np.int64), grams)
    return featurizer

  def save(self, path) -> None:
    """Writes `to_dict` as JSON (UTF-8) to ``path``."""
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(self.to_dict(), f, ensure_ascii=False)

  @classmethod
  def load(cls, path) -> Featurizer:
    """Reads a Featurizer written by `save`."""
    with open(path, encoding='utf-8') as f:
      return cls.from_dict(json.load(f))

  def __repr__(self) -> str:
    args = ', '.join(f'{k}={v!r}' for k, v in self._settings.items())
    return f'Featurizer({args})'
