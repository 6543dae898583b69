"""Text to features on the host: tokens, n-grams, hashing, vocabulary, weights.

The text layer of linjax (numpy only, no JAX). A `Featurizer`, configured by
`FeaturizerOptions` (linjax/text/featurizer_options.py), turns raw documents
into a `linjax.text.csr.CsrFeatures` corpus (N documents, F features):

  texts -> tokens (+ word shapes) -> n-grams -> feature ids -> per-document counts
        -> drop features in fewer than min_df training documents
        -> tf | binary | tfidf | sublinear_tfidf -> optional L2 normalisation

Feature ids come either from an explicit vocabulary (``buckets == 0``; ids
ordered by training count, ties by string) or from the hashing trick
(`linjax.text.hashing`: ``poly64`` token hashes, or FNV-1a for models saved
before format version 4, fastText's n-gram combiner, ``h % buckets``;
unigrams and n-grams share the bucket space). Tokenisation is
`linjax.text.tokenizer`, the vocabulary and the names of hash buckets
`linjax.text.ngram_names`, counting and weighting `linjax.text.weighting`.

Speed: in hashing mode with the ``words_punct`` tokenizer (the default) the
token hashes come straight from the text's characters, vectorised, without a
string per token (`linjax.text.hashed_counts`); the other settings tokenise
into strings (`linjax.text.tokenizer`, vectorised for ``words_punct`` and
``tweet``). n-grams, de-duplication and weighting are vectorised over the
corpus either way, and both ways give the same features.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Mapping, Sequence

import numpy as np

from linjax.text import batch_analysis
from linjax.text import bucket_contents
from linjax.text import csr
from linjax.text import hashed_counts
from linjax.text import hashed_tokens
from linjax.text import ngram_names
from linjax.text import shapes
from linjax.text import weighting
from linjax.text import worker_pool
# The pieces of the pipeline; names callers reach as `text.X` are re-exported.
from linjax.text.hashing import FNV1A
from linjax.text.hashing import NGRAM_MULTIPLIER
from linjax.text.hashing import hash_tokens
from linjax.text.hashing import ngram_starts
from linjax.text.ngram_names import NAMES_PER_BUCKET
from linjax.text.bucket_contents import BucketContent
from linjax.text.featurizer_options import FeaturizerOptions
from linjax.text.tokenizer import Tokens
from linjax.text.tokenizer import doc_lengths
from linjax.text.tokenizer import doc_ranges
from linjax.text.tokenizer import num_docs as tokens_num_docs
from linjax.text.tokenizer import tokenize_batch
from linjax.text.weighting import count_features

_DEFAULT = FeaturizerOptions()

_CHUNK_TOKENS = 1 << 18  # tokens featurised at a time (`_count_in_chunks`).


def _check_texts(texts) -> None:
  if isinstance(texts, str):
    raise TypeError('Featurizer expects a sequence of documents, got one '
                    'string; wrap it in a list.')


def _joined_occurrences(ids: list, starts: list, orders: list):
  """Concatenates per-order occurrence arrays (empty if there are none)."""
  if not ids:
    return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.int8),)
  return np.concatenate(ids), np.concatenate(starts), np.concatenate(orders)


class Featurizer:
  """Documents -> `CsrFeatures`, with the settings of `FeaturizerOptions`.

  Every setting is a keyword argument whose default is `FeaturizerOptions`'s
  (`from_options` takes the dataclass itself); bad values raise
  `linjax.core.errors.ConfigError` naming ``features.<setting>``.

  Hashing mode (``buckets > 0``) needs no fitting for ``tf``/``binary``;
  `fit` still keeps a reference to the training texts, so that
  `bucket_names` can name the buckets asked for (the training n-grams in
  them, most frequent first, and collisions) without fitting anything more. Vocabulary mode (``buckets == 0``)
  keeps every n-gram seen at least ``min_count`` times in training, at most
  ``max_vocab`` of them (0: all), ordered by count then string. The TF-IDF
  weightings fit the document frequencies on the training texts only.

  ``min_df`` > 1 drops, in every document featurised after `fit`, the
  features (hash buckets or vocabulary entries) that occurred in fewer than
  ``min_df`` training documents; they keep their ids (so F does not change)
  but get no weight, and L2 normalisation sees only the kept features. On
  hashed n-grams this removes the singletons a training document alone
  contains, which the model could otherwise use to memorise that document.

  ``shape_ngrams`` > 0 adds n-grams 1..shape_ngrams of the documents' word
  shapes (linjax/text/shapes.py: ``<Xx>`` for "Flu", ``<XX>`` for "CDC", ...,
  from the original case) as features, hashed or in the vocabulary like
  word n-grams; they keep the writing style that lower-casing removes.
  """

  def __init__(self, *, lowercase: bool = _DEFAULT.lowercase,
               tokenizer: str = _DEFAULT.tokenizer,
               ngrams: int = _DEFAULT.ngrams,
               buckets: int = _DEFAULT.buckets,
               min_count: int = _DEFAULT.min_count,
               max_vocab: int = _DEFAULT.max_vocab,
               min_df: int = _DEFAULT.min_df,
               shape_ngrams: int = _DEFAULT.shape_ngrams,
               weighting: str = _DEFAULT.weighting,
               normalize: str = _DEFAULT.normalize,
               hash: str = _DEFAULT.hash):  # pylint: disable=redefined-builtin
    # Validated (ConfigError naming `features.x`) by FeaturizerOptions.
    self._options = FeaturizerOptions(
        lowercase=lowercase, tokenizer=tokenizer, ngrams=ngrams,
        buckets=buckets, min_count=min_count, max_vocab=max_vocab,
        min_df=min_df, shape_ngrams=shape_ngrams, weighting=weighting,
        normalize=normalize, hash=hash)
    self._settings = self._options.to_dict()
    for key, value in self._settings.items():
      setattr(self, key, value)
    self._fitted = False
    self._prepared: weighting.Weighing | None = None  # from _df, on demand
    self._vocab: list[str] | None = None  # id -> n-gram string.
    self._lookup: ngram_names.Lookup | None = None  # vocabulary mode.
    self._df: np.ndarray | None = None  # int64 [F] document frequencies.
    self._num_docs = 0
    # Hashing mode: the training texts (a reference, for `bucket_names`),
    # the buckets named so far, and a model's names from before format 4.
    self._name_texts: list[str] | None = None
    self._named: dict[int, BucketContent] = {}
    self._named_k = 0  # names kept per bucket in _named
    self._old_names: ngram_names.BucketNames | None = None

  @classmethod
  def from_options(cls, options: FeaturizerOptions) -> Featurizer:
    """A Featurizer with the settings of ``options``."""
    if not isinstance(options, FeaturizerOptions):
      raise TypeError('Featurizer.from_options expects FeaturizerOptions, got '
                      f'{type(options).__name__}')
    return cls(**options.to_dict())

  @property
  def options(self) -> FeaturizerOptions:
    """The settings as a (frozen) `FeaturizerOptions`."""
    return self._options

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

  @property
  def _needs_df(self) -> bool:
    return self._options.uses_document_frequencies

  def _require_fit(self, what: str) -> None:
    needs_fit = not self.hashing or self._needs_df
    if needs_fit and not self._fitted:
      raise ValueError(f'Featurizer.{what}: call fit() first (a vocabulary or '
                       'IDF weighting is learned from the training texts).')

  # -- pipeline ------------------------------------------------------------

  @property
  def _hashes_directly(self) -> bool:
    """Whether `hashed_tokens.hash_batch` featurises: token hashes straight
    from the text, no token strings (hashing mode, ``words_punct``)."""
    return self.hashing and self.tokenizer == hashed_tokens.KIND

  def _tokens(self, texts: Sequence[str]) -> Tokens:
    _check_texts(texts)
    if not self.shape_ngrams:
      toks = tokenize_batch(texts, self.lowercase, self.tokenizer)
    else:  # Shapes need the original case: tokenise that, lower-case after.
      cased = tokenize_batch(texts, False, self.tokenizer)
      toks = cased
      if self.lowercase and self.tokenizer in ('words_punct', 'tweet'):
        toks = shapes.lowercase_tokens(cased, texts, self.tokenizer)
      elif self.lowercase:
        toks = tokenize_batch(texts, True, self.tokenizer)
      toks = shapes.add_shape_segment(toks, cased)
    if self.hashing:
      toks = toks._replace(hashes=hash_tokens(toks.strings, self.hash))
    return toks

  @property
  def _max_order(self) -> int:
    return max(self.ngrams, self.shape_ngrams)

  def _starts(self, toks: Tokens, n: int) -> np.ndarray:
    return self._gram_starts(toks.lengths, toks.num_docs, n)

  def _gram_starts(self, lengths: np.ndarray, num_docs: int | None,
                   n: int) -> np.ndarray:
    """Starts of the n-grams to featurise: words up to ``ngrams``, shapes
    (the segments after the first num_docs) up to ``shape_ngrams``."""
    start = ngram_starts(lengths, n)
    if num_docs is None:
      return start if n <= self.ngrams else start[:0]
    first_shape = int(lengths[:num_docs].sum())
    if n > self.ngrams:
      start = start[start >= first_shape]
    if n > self.shape_ngrams:
      start = start[start < first_shape]
    return start

  def _occurrences(self, toks: Tokens):
    """Feature occurrences: (ids int64 [M], starts int64 [M], orders [M])."""
    if self.hashing:
      return self._hashed_occurrences(toks.hashes[toks.tok].astype(np.uint64),
                                      toks.lengths, toks.num_docs)
    ids, starts, orders = [], [], []
    flat = ngram_names.token_indices(self._lookup, toks.strings)[toks.tok]
    unknown_before = np.concatenate([[0], np.cumsum(flat < 0)])
    for n in range(1, self._max_order + 1):
      start = self._starts(toks, n)
      # Only n-grams of vocabulary tokens can be in the vocabulary.
      start = start[unknown_before[start + n] == unknown_before[start]]
      found_ids, found = ngram_names.ngram_ids(self._lookup, flat, start, n)
      ids.append(found_ids)
      starts.append(start[found])
      orders.append(np.full(found_ids.shape[0], n, np.int8))
    return _joined_occurrences(ids, starts, orders)

  def _hashed_occurrences(self, flat: np.ndarray, lengths: np.ndarray,
                          num_docs: int | None):
    """`_occurrences` of tokens given as hashes: uint64 [T] ``flat``, in
    segments of ``lengths`` (shape segments after the first ``num_docs``)."""
    ids, starts, orders = [], [], []
    gram = flat
    mult = np.uint64(NGRAM_MULTIPLIER)
    for n in range(1, self._max_order + 1):
      if n > 1:
        gram = gram[:-1] * mult + flat[n - 1:]  # wraps modulo 2**64.
      start = self._gram_starts(lengths, num_docs, n)
      ids.append((gram[start] % np.uint64(self.buckets)).astype(np.int64))
      starts.append(start)
      orders.append(np.full(start.shape[0], n, np.int8))
    return _joined_occurrences(ids, starts, orders)

  def _counts(self, toks: Tokens, ids: np.ndarray,
              starts: np.ndarray) -> csr.CsrFeatures:
    return self._segment_counts(toks.lengths, toks.num_docs, ids, starts)

  def _segment_counts(self, lengths: np.ndarray, num_docs: int | None,
                      ids: np.ndarray, starts: np.ndarray) -> csr.CsrFeatures:
    segments = lengths.shape[0]
    num_docs = segments if num_docs is None else num_docs
    doc_of_token = np.repeat(np.arange(segments) % max(num_docs, 1), lengths)
    return count_features(doc_of_token[starts], ids, num_docs,
                          self.num_features)

  def _count_in_chunks(self, toks: Tokens) -> csr.CsrFeatures:
    """`_counts` of all documents, `_CHUNK_TOKENS` tokens at a time.

    The per-occurrence arrays (ids, starts, sort keys: tens of bytes per
    n-gram) then exist for one chunk at a time, so the host's peak memory
    stays flat as the corpus grows; the result is the same.
    """
    num_docs = tokens_num_docs(toks)
    ends = np.cumsum(doc_lengths(toks))
    cuts = [0] + np.searchsorted(
        ends, np.arange(_CHUNK_TOKENS, int(ends[-1]) if num_docs else 0,
                        _CHUNK_TOKENS), side='right').tolist() + [num_docs]
    cuts = sorted(set(cuts))
    if len(cuts) <= 2:
      return self._counts(toks, *self._occurrences(toks)[:2])
    return csr.concatenate(
        self._counts(part, *self._occurrences(part)[:2])
        for part in doc_ranges(toks, cuts))

  def _weighing(self) -> weighting.Weighing:
    """The weighting made ready once per fit (`weighting.prepare`)."""
    if self._prepared is None:
      self._prepared = weighting.prepare(self.weighting, self.normalize,
                                         self._df, self._num_docs,
                                         self.min_df)
    return self._prepared

  def _weigh(self, counts: csr.CsrFeatures) -> csr.CsrFeatures:
    return weighting.weigh(counts, self._weighing())

  def _weighed_parts(self, parts: list) -> csr.CsrFeatures:
    """The chunks of counts ``parts`` weighed (on the worker threads) and
    joined."""
    prepared = self._weighing()
    parts = worker_pool.map_in_order(
        lambda c: weighting.weigh_rows(c, 0, c.num_docs, prepared), parts)
    return parts[0] if len(parts) == 1 else csr.concatenate(parts)

  def _count_parts(self, texts: Sequence[str], then=None) -> list:
    _check_texts(texts)
    return hashed_counts.count_hashed_parts(
        texts, self.lowercase, self.ngrams, self.shape_ngrams, self.buckets,
        self.hash, then)

  # -- fitting -------------------------------------------------------------

  def _set_vocabulary(self, vocab: list[str]) -> None:
    """Sets the V vocabulary strings (id -> n-gram) and their id lookup."""
    self._vocab = vocab
    self._lookup = ngram_names.build_lookup(vocab)

  def fit(self, texts: Sequence[str]) -> Featurizer:
    """Learns the vocabulary or IDF from ``texts`` (hashing mode: keeps a
    reference to them for `bucket_names`)."""
    if self._hashes_directly:
      self._fit_texts(texts)
    else:
      self._fit_tokens(self._tokens(texts), texts)
    return self

  def _keep_name_texts(self, texts: Sequence[str]) -> None:
    # Bucket names serve explanations only: looked up when asked
    # (`bucket_names`), for the buckets asked, not in the time of every fit.
    self._name_texts = list(texts) if self.hashing else None
    self._named, self._named_k, self._old_names = {}, 0, None

  def _fit_tokens(self, toks: Tokens,
                  texts: Sequence[str]) -> csr.CsrFeatures | None:
    self._keep_name_texts(texts)
    if not self.hashing:
      self._set_vocabulary(ngram_names.fit_vocabulary(
          toks, self._max_order, functools.partial(self._starts, toks),
          self.min_count, self.max_vocab))
    return self._fit_df(lambda: self._count_in_chunks(toks))

  def _fit_texts(self, texts: Sequence[str]) -> list | None:
    """`fit` from the text: the chunks of training counts (None if the
    document frequencies are not needed)."""
    _check_texts(texts)
    self._keep_name_texts(texts)
    self._fitted = True
    self._df, self._num_docs, self._prepared = None, 0, None
    if not self._needs_df:
      return None
    parts = self._count_parts(texts)
    ids = np.concatenate([p.ids for p in parts])
    self._set_df(np.bincount(ids, minlength=self.num_features),
                 sum(p.num_docs for p in parts))
    return parts

  def _fit_df(self, counts_of_training) -> csr.CsrFeatures | None:
    """Marks the featuriser fitted and learns the document frequencies (if
    the weighting or min_df needs them) from ``counts_of_training()``."""
    self._fitted = True
    self._df, self._num_docs, self._prepared = None, 0, None
    if not self._needs_df:
      return None
    counts = counts_of_training()
    self._set_df(np.bincount(counts.ids, minlength=self.num_features),
                 counts.num_docs)
    return counts

  def __getstate__(self):
    # The buckets named so far travel; the training texts do not (a pickle
    # of a model should not hold its corpus): ask `bucket_names` first.
    state = dict(self.__dict__)
    state['_name_texts'] = None
    state['_prepared'] = None  # rebuilt from the document frequencies
    return state

  def __setstate__(self, state):
    state = dict(state)
    if 'hash' not in state['_settings']:  # pickled before the hash setting
      settings = dict(state['_settings'], hash=FNV1A)
      state['_settings'] = settings
      state['_options'] = FeaturizerOptions(**settings)
      state['hash'] = FNV1A
    state['_old_names'] = state.pop('_names', state.get('_old_names'))
    state.pop('_pending_names', None)
    for key, value in (('_name_texts', None), ('_named', {}), ('_named_k', 0),
                       ('_prepared', None)):
      state.setdefault(key, value)
    self.__dict__.update(state)

  def _set_df(self, df: np.ndarray, num_docs: int) -> None:
    self._df = df.astype(np.int64)
    self._num_docs = int(num_docs)
    self._prepared = None

  def combine_document_frequencies(self, combine) -> None:
    """Replaces the fitted document frequencies by ``combine(df, num_docs)``.

    For a run of several processes, each fitted on its own part of the
    training texts (hashing mode: the bucket ids agree across processes):
    ``combine`` gets this fit's int64 [F] document frequencies and document
    count and returns their sums over the processes, so that every process
    weighs (IDF, min_df) as one fit on the whole corpus would. Nothing to
    combine (and ``combine`` is not called) when neither the weighting nor
    min_df needs the frequencies. Bucket names stay this process's.
    """
    self._require_fit('combine_document_frequencies')
    if not self.hashing:
      raise ValueError('Featurizer.combine_document_frequencies: vocabulary '
                       'mode (buckets=0) gives each fit its own feature ids; '
                       'use hashing (buckets > 0).')
    if self._df is None:
      return
    df, num_docs = combine(self._df.copy(), self._num_docs)
    df = np.asarray(df)
    if df.shape != self._df.shape:
      raise ValueError(f'combine_document_frequencies: expected [F] = '
                       f'{self._df.shape}, got {df.shape}.')
    self._set_df(df, num_docs)

  def transform(self, texts: Sequence[str]) -> csr.CsrFeatures:
    """Featurises ``texts`` -> CsrFeatures [N documents, F features]."""
    if self._hashes_directly:
      self._require_fit('transform')
      prepared = self._weighing()
      # Each chunk counted and weighed while in cache, on the worker threads.
      parts = self._count_parts(texts, lambda c: weighting.weigh_rows(
          c, 0, c.num_docs, prepared))
      return parts[0] if len(parts) == 1 else csr.concatenate(parts)
    return self._transform_tokens(self._tokens(texts))

  def _transform_tokens(self, toks: Tokens) -> csr.CsrFeatures:
    self._require_fit('transform')
    return self._weigh(self._count_in_chunks(toks))

  def fit_transform(self, texts: Sequence[str]) -> csr.CsrFeatures:
    """`fit` then `transform` on the same texts, tokenising them once."""
    if self._hashes_directly:
      parts = self._fit_texts(texts)
      return (self.transform(texts) if parts is None
              else self._weighed_parts(parts))
    toks = self._tokens(texts)
    counts = self._fit_tokens(toks, texts)
    if counts is None:
      return self._transform_tokens(toks)
    return self._weigh(counts)

  # -- explanations --------------------------------------------------------

  def bucket_names(self, feature_ids: Sequence[int],
                   k: int = NAMES_PER_BUCKET) -> list[BucketContent]:
    """What each feature of ``feature_ids`` stands for: a `BucketContent`.

    Hashing mode: up to ``k`` of the training n-grams that fell into the
    bucket, most frequent first (ties by string), their training counts,
    and how many distinct ones did (``num_distinct > 1``: a collision). They
    are looked up for the ids asked only, in one vectorised pass over the
    training texts that `fit` kept a reference to, and cached: ask once for
    every id you need (e.g. the top features of all classes). A featuriser
    loaded from a saved model knows the buckets named before it was saved
    (`to_dict` keeps those); for others it returns `bucket_contents.EMPTY`.
    Vocabulary mode: the entry's n-gram (counts unknown).

    Args:
      feature_ids: int [K] ids in [0, F).
      k: names per bucket, >= 1.

    Returns:
      K `BucketContent`, in the order of ``feature_ids``.
    """
    ids = [int(i) for i in np.asarray(feature_ids).reshape(-1).tolist()]
    for i in ids:
      if not 0 <= i < self.num_features:
        raise ValueError(f'feature id {i} is outside [0, '
                         f'{self.num_features})')
    if k < 1:
      raise ValueError(f'bucket_names: k must be >= 1, got {k}')
    if not self.hashing:
      return [BucketContent((self._vocab[i],), (), 1) for i in ids]
    missing = [i for i in dict.fromkeys(ids)
               if i not in self._named or k > self._named_k]
    if missing and self._name_texts is not None:
      self._named.update(self._look_up_buckets(missing, max(k, self._named_k)))
      self._named_k = max(k, self._named_k)
    out = []
    for i in ids:
      content = self._named.get(i)
      if content is None and self._old_names is not None:
        content = _old_bucket_content(self._old_names, i)
      content = content or bucket_contents.EMPTY
      out.append(BucketContent(content.names[:k], content.counts[:k],
                               content.num_distinct))
    return out

  def _look_up_buckets(self, ids: list[int],
                       k: int) -> dict[int, BucketContent]:
    """`BucketContent` of ``ids`` from the training texts (one pass)."""
    tally = bucket_contents.Tally(self.buckets, ids,
                                  hashed_tokens.SHAPE_HASHES[self.hash])
    texts = self._name_texts
    if self._hashes_directly:
      parts = bucket_contents.hashed_parts(
          texts, self.lowercase, tally.wants_shapes(self.shape_ngrams),
          self.hash, hashed_counts.CHUNK_CHARS)
    else:
      parts = [bucket_contents.token_part(self._tokens(texts),
                                          self.shape_ngrams > 0)]
    for part in parts:
      tally.add(part, self.ngrams, self.shape_ngrams)
    return tally.contents(ids, k)

  def feature_name(self, feature_id: int) -> str:
    """The n-gram string of a feature id.

    A hash bucket reads as its `bucket_names` joined with ``' | '`` (most
    frequent first), or ``'<bucket 123>'`` if none is known. Each call
    for a bucket not named yet looks through the training texts: for many
    ids use `feature_names` (one look for all).
    """
    return self.feature_names([feature_id])[0]

  def feature_names(self, feature_ids: Sequence[int]) -> list[str]:
    """`feature_name` of each id in ``feature_ids`` (one `bucket_names`)."""
    ids = np.asarray(feature_ids).reshape(-1).tolist()
    return [' | '.join(c.names) if c.names else f'<bucket {i}>'
            for i, c in zip(ids, self.bucket_names(ids))]

  def analyze(self, text: str) -> list[tuple[str, int, float]]:
    """Explains one document: (n-gram string, feature id, final weight).

    Items are the distinct n-grams in reading order; n-grams outside the
    vocabulary, or whose feature `min_df` drops, are left out. When several strings share a feature (a hash
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
      if int(ids[i]) not in weight_of:
        continue  # dropped by min_df.
      s, n = int(starts[i]), int(orders[i])
      item = items.setdefault(' '.join(words[s:s + n]), [int(ids[i]), 0])
      item[1] += 1
    return [(string, fid, weight_of[fid] * c / count_of[fid])
            for string, (fid, c) in items.items()]

  def analyze_batch(self, texts: Sequence[str]) -> batch_analysis.Analysis:
    """Explains N documents at once, token by token (for report pages).

    Returns `batch_analysis.Analysis`: each document's tokens with their
    character spans in its original text (its words, then one shape token
    per word that has a word shape, with the word's span), and one slot per
    occurrence of an n-gram or shape n-gram whose feature is kept: its
    document, feature id, the tokens it covers, and its share of the
    feature's final weight (a feature seen k times in a document gives each
    occurrence 1/k), so that the slots' weights summed per (document,
    feature) are the rows of ``transform(texts)``, and ``sum(weight *
    W[feature])`` over a document's slots plus b are its logits.
    Vectorised (the default ``words_punct`` hashing: one scan of the texts).
    """
    self._require_fit('analyze_batch')
    _check_texts(texts)
    texts = list(texts)
    if not self._hashes_directly:
      return self._analyze_tokens(texts)
    joined = '\n'.join(texts)
    special = hashed_tokens.special_docs(texts, joined, self.lowercase)
    plain = hashed_tokens.emptied(texts, special)
    scanned = hashed_tokens.scan(plain, joined if plain is texts else None,
                                 self.lowercase, self.shape_ngrams > 0,
                                 self.hash)
    lengths = np.fromiter(map(len, plain), np.int64, len(plain))
    offsets = np.repeat(np.cumsum(lengths + 1) - (lengths + 1),
                        scanned.lengths)
    word_start, word_end = scanned.starts - offsets, scanned.ends - offsets
    flat, segments = scanned.hashes.astype(np.uint64), scanned.lengths
    shape_start = shape_end = np.zeros(0, np.int64)
    shape_count = np.zeros(len(texts), np.int64)
    if self.shape_ngrams:
      keep = scanned.shapes >= 0
      shape_start, shape_end = word_start[keep], word_end[keep]
      kept_before = np.zeros(keep.shape[0] + 1, np.int64)
      np.cumsum(keep, out=kept_before[1:])
      shape_count = np.diff(kept_before[np.cumsum(scanned.lengths)],
                            prepend=0)
      flat = np.concatenate([flat, hashed_tokens.SHAPE_HASHES[self.hash][
          scanned.shapes[keep]].astype(np.uint64)])
      segments = np.concatenate([segments, shape_count])
    ids, starts, orders = self._hashed_occurrences(flat, segments,
                                                   len(texts))
    analysis = batch_analysis.assemble(batch_analysis.Pieces(
        word_start, word_end, scanned.lengths, shape_start, shape_end,
        shape_count, ids, starts, orders), self.num_features, self._weigh)
    if special.shape[0] == 0:
      return analysis
    rest = np.setdiff1d(np.arange(len(texts)), special)
    return batch_analysis.merge(len(texts), [
        (rest, _take_docs(analysis, rest)),
        (special, self._analyze_tokens([texts[i] for i in special.tolist()]))])

  def _analyze_tokens(self, texts: list[str]) -> batch_analysis.Analysis:
    """`analyze_batch` through the token path (spans: a regex a document)."""
    num = len(texts)
    toks = self._tokens(texts)
    ids, starts, orders = self._occurrences(toks)
    word_start, word_end, words = batch_analysis.regex_batch(
        texts, self.lowercase, self.tokenizer)
    if not np.array_equal(words, toks.lengths[:num]):
      raise AssertionError('analyze_batch: token spans disagree with the '
                           'tokenizer (a bug)')
    shape_start = shape_end = np.zeros(0, np.int64)
    shape_count = np.zeros(num, np.int64)
    if self.shape_ngrams:
      shape_count = toks.lengths[num:]
      cased_start, cased_end, _ = batch_analysis.regex_batch(
          texts, False, self.tokenizer)
      cased = tokenize_batch(texts, False, self.tokenizer)
      has_shape = (shapes.string_shapes(cased.strings) >= 0)[cased.tok]
      shape_start, shape_end = cased_start[has_shape], cased_end[has_shape]
    return batch_analysis.assemble(batch_analysis.Pieces(
        word_start, word_end, words, shape_start, shape_end, shape_count,
        ids, starts, orders), self.num_features, self._weigh)

  # -- persistence ---------------------------------------------------------

  def to_dict(self) -> dict[str, Any]:
    """JSON-serialisable state; `from_dict` featurises identically.

    IDF is stored as sparse document frequencies (``ids``, ``counts``,
    ``num_docs``) from which the idf vector is recomputed exactly.
    ``named_buckets`` holds the `bucket_names` of the buckets named so far
    (only those: name what a reader of the model needs, e.g. the top
    features, before saving): ``ids``, ``names``, ``counts``,
    ``num_distinct`` and ``k``. ``bucket_names`` is a model's from before
    format version 4 (every bucket's names, kept as loaded): a token table,
    the bucket of each name, and the names' token indices row-major
    [K, max(ngrams, shape_ngrams)] (-1 pads shorter n-grams).
    """
    d: dict[str, Any] = {'type': 'linjax.text.Featurizer', 'version': 2,
                         'settings': self.settings, 'fitted': self._fitted,
                         'vocabulary': self._vocab, 'document_frequency': None,
                         'bucket_names': None, 'named_buckets': None}
    if self._df is not None:
      nonzero = np.flatnonzero(self._df)
      d['document_frequency'] = {'num_docs': self._num_docs,
                                 'ids': nonzero.tolist(),
                                 'counts': self._df[nonzero].tolist()}
    if self._old_names is not None:  # as loaded, for a converted model
      d['bucket_names'] = ngram_names.bucket_names_to_dict(self._old_names)
    if self._named:
      ids = sorted(self._named)
      d['named_buckets'] = {
          'ids': ids, 'k': self._named_k,
          'names': [list(self._named[i].names) for i in ids],
          'counts': [list(self._named[i].counts) for i in ids],
          'num_distinct': [self._named[i].num_distinct for i in ids]}
    return d

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> Featurizer:
    """Inverse of `to_dict`."""
    if d.get('type') != 'linjax.text.Featurizer':
      raise ValueError('not a saved linjax Featurizer (missing '
                       "type='linjax.text.Featurizer')")
    settings = dict(d['settings'])
    # Saved before the `hash` setting (its version 1, a model's format
    # version <= 3): those hashed with FNV-1a.
    settings.setdefault('hash', FNV1A)
    featurizer = cls(**settings)
    featurizer._fitted = bool(d['fitted'])
    if d.get('vocabulary') is not None:
      featurizer._set_vocabulary(list(d['vocabulary']))
    df = d.get('document_frequency')
    if df is not None:
      dense = np.zeros(featurizer.num_features, np.int64)
      dense[np.asarray(df['ids'], np.int64)] = df['counts']
      featurizer._set_df(dense, df['num_docs'])
    names = d.get('bucket_names')
    if names is not None:  # every bucket's, without counts (before format 4)
      featurizer._old_names = ngram_names.bucket_names_from_dict(
          names, featurizer._max_order)
    named = d.get('named_buckets')
    if named is not None:
      featurizer._named = {
          int(i): BucketContent(tuple(map(str, n)), tuple(map(int, c)),
                                int(m))
          for i, n, c, m in zip(named['ids'], named['names'],
                                named['counts'], named['num_distinct'])}
      featurizer._named_k = int(named['k'])
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


def _old_bucket_content(names: ngram_names.BucketNames,
                        bucket: int) -> BucketContent | None:
  """A bucket's names as a model saved before format 4 kept them (no counts;
  at least as many distinct n-grams as names)."""
  name = ngram_names.bucket_name(names, bucket)
  if name is None:
    return None
  listed = tuple(name.split(' | '))
  return BucketContent(listed, (), len(listed))


def _take_docs(analysis: batch_analysis.Analysis,
               docs: np.ndarray) -> batch_analysis.Analysis:
  """The `Analysis` of the documents ``docs`` (sorted) of ``analysis``, the
  others having no tokens and no slots."""
  return batch_analysis.Analysis(
      np.append(analysis.doc_offsets[docs], analysis.doc_offsets[-1]),
      analysis.start, analysis.end,
      np.searchsorted(docs, analysis.slot_doc), analysis.slot_feature,
      analysis.slot_weight, analysis.slot_first, analysis.slot_length)
