"""Which training n-grams fell into given hash buckets: names for buckets.

numpy only, no JAX. A hashed feature id (a bucket) is read back as the
training n-grams whose hash fell into it, most frequent first, and how many
distinct ones did (more than one: a hash collision). `BucketContent` is one
bucket's answer.

Only the buckets asked for are looked up, in one pass over the training
texts the featuriser kept (by reference) at fit time: each part of the
corpus (`TokenPart`: token hashes, and a way to read a token's string) is
hashed into n-grams as the featuriser does (`linjax.text.hashing`), the
n-grams of wanted buckets are kept, equal ones counted by their 64-bit
n-gram hash (`Tally`), and the string of an n-gram is made only the first
time it is met. `hashed_parts` gives the parts of ``words_punct`` texts
straight from the vectorised scan (`linjax.text.hashed_tokens`); `token_part`
those of tokenised texts (`linjax.text.tokenizer.Tokens`).
"""

from __future__ import annotations

from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from linjax.text import hashed_tokens
from linjax.text import shapes
from linjax.text.hashing import hash_tokens
from linjax.text.hashing import NGRAM_MULTIPLIER
from linjax.text.tokenizer import tokenize_batch
from linjax.text.tokenizer import Tokens
from linjax.text.tokenizer import URL_TOKEN


class BucketContent(NamedTuple):
  """The training n-grams of one feature (a hash bucket or a vocabulary
  entry).

  names: up to k n-grams, most frequent first (ties by string); empty if no
    training n-gram fell into the bucket (or it is not known: a loaded model
    keeps only the buckets named before it was saved).
  counts: their training occurrences (empty where unknown: a vocabulary
    entry, or a model saved before format version 4).
  num_distinct: how many distinct training n-grams fell into it; more than
    one is a hash collision (`collision`).
  """
  names: tuple[str, ...]
  counts: tuple[int, ...]
  num_distinct: int

  @property
  def collision(self) -> bool:
    return self.num_distinct > 1


EMPTY = BucketContent((), (), 0)


class TokenPart(NamedTuple):
  """Some training documents' tokens, as the bucket search reads them.

  T word tokens flat in document order, N documents; with word shapes, S
  shapes (each document's after its words, as `Featurizer` counts them).
  """
  hashes: np.ndarray  # uint [T] each token's hash (the featuriser's kind).
  lengths: np.ndarray  # int64 [N] tokens per document.
  word: Callable[[int], str]  # token t's string as featurised.
  shapes: np.ndarray | None = None  # int [S] indices into shapes.SHAPES.
  shape_lengths: np.ndarray | None = None  # int64 [N]


class Tally:
  """Distinct n-grams of wanted buckets: 64-bit n-gram hash -> [bucket,
  training count, string]."""

  def __init__(self, buckets: int, wanted_ids: Sequence[int],
               shape_hashes: np.ndarray):
    """Looks for the buckets ``wanted_ids`` of F = ``buckets``; the shape
    tokens hash to ``shape_hashes`` (uint [len(SHAPES)])."""
    self.buckets = buckets
    ids = np.unique(np.asarray(list(wanted_ids), np.int64))
    self.ids = ids
    self.wanted = np.zeros(buckets, bool)
    self.wanted[ids] = True
    # slot_of[b]: 1 + the index of wanted bucket b in ids (pages of the
    # zeros that no wanted bucket touches are never written).
    self.slot_of = np.zeros(buckets, np.int32)
    self.slot_of[ids] = np.arange(1, ids.shape[0] + 1)
    # A small table first (it stays in cache): the buckets it lets through
    # are checked in the F-long one.
    self.maybe = np.zeros(min(buckets, _FILTER), bool)
    self.maybe[ids % self.maybe.shape[0]] = True
    self.shape_hashes = [int(h) for h in shape_hashes.tolist()]
    self.grams: dict[int, list] = {}

  def wants_shapes(self, shape_ngrams: int) -> bool:
    """Whether a wanted bucket may hold a shape n-gram (else the shapes
    need not be read)."""
    kinds = len(shapes.SHAPES)
    return any(self.wanted[g % self.buckets]
               for n in range(1, shape_ngrams + 1)
               for g, _ in self._shape_grams(n, range(kinds ** n)))

  def _shape_grams(self, n: int, codes):
    """(n-gram hash, digits) of shape n-gram codes (base len(SHAPES))."""
    kinds = len(shapes.SHAPES)
    for c in codes:
      digits = [c // kinds ** (n - 1 - j) % kinds for j in range(n)]
      g = self.shape_hashes[digits[0]]
      for d in digits[1:]:
        g = (g * NGRAM_MULTIPLIER + self.shape_hashes[d]) % 2**64
      yield g, digits

  def _count(self, gram: int, bucket: int, count: int,
             string: Callable[[], str]) -> None:
    entry = self.grams.get(gram)
    if entry is None:
      self.grams[gram] = [bucket, count, string()]
    else:
      entry[1] += count

  def add(self, part: TokenPart, ngrams: int, shape_ngrams: int) -> None:
    """Counts the n-grams of ``part`` (orders 1..ngrams of words, 1..
    shape_ngrams of shapes) whose bucket is wanted."""
    self._add_words(part, ngrams)
    if shape_ngrams and part.shapes is not None:
      self._add_shapes(part, shape_ngrams)

  def _add_words(self, part: TokenPart, order: int) -> None:
    flat = part.hashes.astype(np.uint64)
    doc_end = np.repeat(np.cumsum(part.lengths), part.lengths)
    gram = flat
    mult = np.uint64(NGRAM_MULTIPLIER)
    for n in range(1, order + 1):
      if n > 1:
        gram = gram[:-1] * mult + flat[n - 1:]  # wraps modulo 2**64.
      bucket = (gram % np.uint64(self.buckets)).astype(np.intp)
      at = np.flatnonzero(np.take(self.maybe, bucket % self.maybe.shape[0]))
      at = at[np.take(self.wanted, bucket[at])]
      at = at[at + n <= doc_end[at]]  # inside one document
      if at.shape[0] == 0:
        continue
      string = lambda t, n=n: ' '.join(map(part.word, range(t, t + n)))
      # Most occurrences of a bucket are one n-gram: count those equal to
      # one of its occurrences by bucket, and sort only the others.
      value = gram[at]
      slot = np.take(self.slot_of, bucket[at]) - 1
      seen = np.zeros(self.ids.shape[0], np.uint64)
      seen[slot] = value  # one of each bucket's n-grams
      same = value == seen[slot]
      count = np.bincount(slot[same], minlength=self.ids.shape[0])
      where = np.zeros(self.ids.shape[0], np.int64)
      where[slot[same]] = at[same]
      for j in np.flatnonzero(count).tolist():
        t = int(where[j])
        self._count(int(seen[j]), int(self.ids[j]), int(count[j]),
                    lambda t=t: string(t))
      other = np.flatnonzero(~same)
      if other.shape[0] == 0:
        continue
      distinct, first, count = np.unique(value[other], return_index=True,
                                         return_counts=True)
      for g, i, c in zip(distinct.tolist(), first.tolist(), count.tolist()):
        t = int(at[other[i]])
        self._count(g, int(bucket[t]), c, lambda t=t: string(t))

  def _add_shapes(self, part: TokenPart, order: int) -> None:
    # Few distinct shape n-grams (7 ** n): count them all by their codes.
    shape = part.shapes.astype(np.int64)
    doc_end = np.repeat(np.cumsum(part.shape_lengths), part.shape_lengths)
    kinds = len(shapes.SHAPES)
    code = shape
    for n in range(1, order + 1):
      if n > 1:
        code = code[:-1] * kinds + shape[n - 1:]
      inside = np.arange(code.shape[0]) + n <= doc_end[:code.shape[0]]
      counts = np.bincount(code[inside], minlength=kinds ** n)
      seen = np.flatnonzero(counts).tolist()
      for (g, digits), c in zip(self._shape_grams(n, seen), seen):
        if self.wanted[g % self.buckets]:
          self._count(g, g % self.buckets, int(counts[c]),
                      lambda digits=digits: ' '.join(
                          shapes.SHAPES[d] for d in digits))

  def contents(self, ids: Sequence[int], k: int) -> dict[int, BucketContent]:
    """`BucketContent` (up to ``k`` names) of each bucket of ``ids``."""
    by_bucket: dict[int, list] = {int(i): [] for i in ids}
    for b, count, string in self.grams.values():
      if b in by_bucket:
        by_bucket[b].append((-count, string))
    out = {}
    for b, items in by_bucket.items():
      items.sort()
      top = items[:k]
      out[b] = BucketContent(tuple(s for _, s in top),
                             tuple(-c for c, _ in top), len(items))
    return out


_FILTER = 1 << 15  # entries of the small table of wanted buckets.
_SHAPE_INDEX = {s: i for i, s in enumerate(shapes.SHAPES)}


def token_part(toks: Tokens, with_shapes: bool) -> TokenPart:
  """The `TokenPart` of tokenised documents (`Featurizer`'s token path:
  with shapes, segments num_docs.. are the documents' shapes), with
  ``toks.hashes``."""
  num_docs = toks.lengths.shape[0] if toks.num_docs is None else toks.num_docs
  words = int(toks.lengths[:num_docs].sum())
  strings, tok = toks.strings, toks.tok
  word = lambda t: strings[tok[t]]
  flat = toks.hashes[tok[:words]]
  if not with_shapes:
    return TokenPart(flat, toks.lengths[:num_docs], word)
  index = np.array([_SHAPE_INDEX.get(s, -1) for s in strings], np.int64)
  return TokenPart(flat, toks.lengths[:num_docs], word, index[tok[words:]],
                   toks.lengths[num_docs:])


_CAPITAL_SIGMA = '\u03a3'


def hashed_parts(texts: Sequence[str], lowercase: bool, with_shapes: bool,
                 hash_kind: str, chunk_chars: int) -> Iterator[TokenPart]:
  """The `TokenPart`s of ``words_punct`` documents, about ``chunk_chars``
  characters at a time, from `hashed_tokens.scan` (documents that take the
  reference path there: from the reference tokenizer)."""
  texts = list(texts)
  ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)
  cuts = np.searchsorted(ends, np.arange(chunk_chars, int(ends[-1]) if texts
                                         else 0, chunk_chars), side='right')
  cuts = sorted(set([0, *cuts.tolist(), len(texts)]))
  for lo, hi in zip(cuts[:-1], cuts[1:]):
    chunk = texts[lo:hi]
    joined = '\n'.join(chunk)
    special = hashed_tokens.special_docs(chunk, joined, lowercase)
    plain = hashed_tokens.emptied(chunk, special)
    if plain is not chunk:
      joined = '\n'.join(plain)
    scanned = hashed_tokens.scan(plain, joined, lowercase, with_shapes,
                                 hash_kind)
    yield TokenPart(scanned.hashes, scanned.lengths,
                    _span_reader(plain, joined, lowercase, scanned),
                    *(_kept_shapes(scanned) if with_shapes else ()))
    if special.shape[0]:
      yield _reference_part([chunk[i] for i in special.tolist()], lowercase,
                            with_shapes, hash_kind)


def _span_reader(texts: list[str], joined: str, lowercase: bool,
                 scanned: hashed_tokens.Scan) -> Callable[[int], str]:
  """Token t's string: its span of the joined texts, lower-cased as the
  scan hashed it; '<url>' for a URL."""
  lowered = []
  urls = set(scanned.urls.tolist())

  def word(t: int) -> str:
    if t in urls:
      return URL_TOKEN
    span = joined[scanned.starts[t]:scanned.ends[t]]
    if not lowercase:
      return span
    if _CAPITAL_SIGMA not in span:
      return span.lower()
    if not lowered:  # a final sigma depends on what follows the token
      lowered.append('\n'.join(map(str.lower, texts)))
    return lowered[0][scanned.starts[t]:scanned.ends[t]]

  return word


def _kept_shapes(scanned: hashed_tokens.Scan):
  """(shape indices [S], shapes per document [N]) of the scanned tokens."""
  keep = scanned.shapes >= 0
  kept_before = np.zeros(keep.shape[0] + 1, np.int64)
  np.cumsum(keep, out=kept_before[1:])
  return (scanned.shapes[keep],
          np.diff(kept_before[np.cumsum(scanned.lengths)], prepend=0))


def _reference_part(texts: list[str], lowercase: bool, with_shapes: bool,
                    hash_kind: str) -> TokenPart:
  """The `TokenPart` of documents from the reference tokenizer."""
  toks = tokenize_batch(texts, lowercase, hashed_tokens.KIND)
  hashes = hash_tokens(toks.strings, hash_kind)
  strings, tok = toks.strings, toks.tok
  word = lambda t: strings[tok[t]]
  if not with_shapes:
    return TokenPart(hashes[tok], toks.lengths, word)
  ref = hashed_tokens.hash_batch(texts, lowercase, True, hash_kind)
  return TokenPart(hashes[tok], toks.lengths, word, ref.shapes,
                   ref.shape_lengths)
