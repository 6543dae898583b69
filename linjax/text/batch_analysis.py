"""A batch of documents explained token by token: `Featurizer.analyze_batch`.

numpy only, no JAX. Shapes: N documents, T tokens, S feature slots, F
features.

For the error-analysis page (each document's text with every token
coloured by its exact contribution), `Analysis` lays out, flat:

* the tokens of each document with their character spans in its original
  text: its word tokens in reading order, then its shape tokens (one per
  word token that has a word shape, with that word's span), so a shape
  n-gram covers consecutive shape tokens;
* one feature slot per occurrence of a word n-gram or shape n-gram whose
  feature the featuriser keeps (in the vocabulary, not dropped by min_df):
  its document, feature id, the tokens it covers, and its share of the
  feature's final weight in the document (a feature that occurs k times in
  a document gives each occurrence 1/k of its weight), so that the slots'
  weights summed per (document, feature) are ``transform``'s row.

`assemble` builds it from the tokens' spans and the featuriser's feature
occurrences (`Pieces`); `Featurizer.analyze_batch` gets those from the
vectorised scan for ``words_punct`` (`linjax.text.hashed_tokens`), or from
the token path with one regex per document for the spans (`regex_batch`),
and `merge` puts the two groups of documents back in order.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import numpy as np

from linjax.text import csr
from linjax.text import tokenizer as tokenizer_lib

_URL = tokenizer_lib.URL_REGEX.pattern
_SPANS = {
    'words_punct': re.compile(_URL + r'|\w+|[^\w\s]', re.IGNORECASE),
    'tweet': re.compile(_URL + r'|\w+|(?<!\w)[#@]\w+|[^\w\s]', re.IGNORECASE),
    'words': re.compile(r'(?u)\b\w\w+\b'),
    'whitespace': re.compile(r'\S+'),
}


class Analysis(NamedTuple):
  """Tokens and feature slots of N documents, flat (see the module).

  doc_offsets: int64 [N+1]; document n owns tokens
    ``doc_offsets[n]:doc_offsets[n+1]`` (its words, then its shapes).
  start, end: int64 [T] each token's span in its document's original text,
    in code points (Python str indices).
  slot_doc: int64 [S] the document of each slot.
  slot_feature: int64 [S] its feature id in [0, F).
  slot_weight: float64 [S] its share of the feature's final weight.
  slot_first: int64 [S] its first covered token (an index into T).
  slot_length: int64 [S] the number of tokens it covers (consecutive).
  """
  doc_offsets: np.ndarray
  start: np.ndarray
  end: np.ndarray
  slot_doc: np.ndarray
  slot_feature: np.ndarray
  slot_weight: np.ndarray
  slot_first: np.ndarray
  slot_length: np.ndarray

  @property
  def num_docs(self) -> int:
    return self.doc_offsets.shape[0] - 1


def _regex_spans(text: str, lowercase: bool, kind: str) -> list:
  """[(start, end)] in ``text`` of ``tokenizer.tokenize(text, lowercase,
  kind)``'s tokens (a token from part of a character that lower-cases to
  several, "İ" to "i" and a dot, spans that character)."""
  lowered = text.lower() if lowercase else text
  spans = [m.span() for m in _SPANS[kind].finditer(lowered)]
  if len(lowered) == len(text):
    return spans
  # back[i]: the character of text whose lower case holds lowered[i].
  back = np.repeat(np.arange(len(text)),
                   [len(ch.lower()) for ch in text]).tolist()
  return [(back[s], back[e - 1] + 1) for s, e in spans]


def regex_batch(texts: Sequence[str], lowercase: bool, kind: str):
  """(starts, ends, lengths) of `_regex_spans` of each text, flat."""
  found = [_regex_spans(t, lowercase, kind) for t in texts]
  lengths = np.fromiter(map(len, found), np.int64, len(found))
  flat = np.array([span for spans in found for span in spans],
                  np.int64).reshape(-1, 2)
  return flat[:, 0].copy(), flat[:, 1].copy(), lengths


class Pieces(NamedTuple):
  """What `assemble` builds an `Analysis` from (N documents).

  The occurrences are those of the featuriser's `_occurrences`: ``starts``
  index the tokens laid out as all documents' words, then all documents'
  shapes.
  """
  word_start: np.ndarray  # int64 [Tw] spans of the word tokens, doc order
  word_end: np.ndarray
  words: np.ndarray  # int64 [N] word tokens per document
  shape_start: np.ndarray  # int64 [Ts] spans of the shape tokens
  shape_end: np.ndarray
  shape_count: np.ndarray  # int64 [N] shape tokens per document
  ids: np.ndarray  # int64 [M] each occurrence's feature id
  starts: np.ndarray  # int64 [M] its first token
  orders: np.ndarray  # [M] its number of tokens


def assemble(pieces: Pieces, num_features: int, weigh) -> Analysis:
  """The `Analysis` of N documents from their `Pieces`.

  Args:
    pieces: tokens, spans and feature occurrences.
    num_features: F.
    weigh: CsrFeatures of counts -> the final CsrFeatures (the featuriser's
      min_df, weighting and normalisation).
  """
  p = pieces
  num = p.words.shape[0]
  per_doc = p.words + p.shape_count
  doc_offsets = np.zeros(num + 1, np.int64)
  np.cumsum(per_doc, out=doc_offsets[1:])
  # Where each word and shape token goes: its document's words, then shapes.
  word_at = np.repeat(doc_offsets[:-1] - (np.cumsum(p.words) - p.words),
                      p.words) + np.arange(int(p.words.sum()))
  shape_at = np.repeat(doc_offsets[:-1] + p.words
                       - (np.cumsum(p.shape_count) - p.shape_count),
                       p.shape_count) + np.arange(int(p.shape_count.sum()))
  start = np.empty(int(doc_offsets[-1]), np.int64)
  end = np.empty_like(start)
  start[word_at], end[word_at] = p.word_start, p.word_end
  start[shape_at], end[shape_at] = p.shape_start, p.shape_end
  first = np.concatenate([word_at, shape_at])[p.starts]
  doc = np.searchsorted(doc_offsets, first, side='right') - 1
  # Entries (document, feature) in order, as the counts' rows hold them.
  key = doc * num_features + p.ids
  order = np.argsort(key)
  sorted_key = key[order]
  new = np.ones(sorted_key.shape[0], bool)
  new[1:] = sorted_key[1:] != sorted_key[:-1]
  entry = np.empty(key.shape[0], np.int64)
  entry[order] = np.cumsum(new) - 1
  unique = sorted_key[new]
  at = np.flatnonzero(new)
  counts = np.diff(np.append(at, sorted_key.shape[0])).astype(np.float32)
  entry_doc = unique // num_features
  indptr = np.searchsorted(entry_doc, np.arange(num + 1))
  weighted = weigh(csr.CsrFeatures(indptr, (unique % num_features).astype(
      np.int32), counts, num_features))
  # Each entry's final weight (0: dropped), from the weighted rows.
  final_key = (np.repeat(np.arange(num, dtype=np.int64),
                         np.diff(weighted.indptr)) * num_features
               + weighted.ids)
  entry_weight = np.zeros(unique.shape[0], np.float64)
  entry_weight[np.searchsorted(unique, final_key)] = weighted.weights
  share = entry_weight[entry] / counts[entry]
  kept = np.flatnonzero(share != 0)
  # Reading order (documents are runs of tokens): a few sorted runs merged.
  kept = kept[np.argsort(first[kept], kind='stable')]
  return Analysis(doc_offsets, start, end, doc[kept], p.ids[kept],
                  share[kept], first[kept],
                  np.asarray(p.orders, np.int64)[kept])


def merge(num_docs: int, parts: Sequence[tuple[np.ndarray, Analysis]]
          ) -> Analysis:
  """One `Analysis` of N documents from analyses of some of them.

  Args:
    num_docs: N.
    parts: (int64 [n_i] which documents, their `Analysis`), every document
      in exactly one part.
  """
  tokens = np.zeros(num_docs, np.int64)
  for docs, a in parts:
    tokens[docs] = np.diff(a.doc_offsets)
  doc_offsets = np.zeros(num_docs + 1, np.int64)
  np.cumsum(tokens, out=doc_offsets[1:])
  total = int(doc_offsets[-1])
  start, end = np.empty(total, np.int64), np.empty(total, np.int64)
  slots = []
  for docs, a in parts:
    # Token i of part document j moves to doc_offsets[docs[j]] + (i - its
    # part's offset).
    part_doc = np.repeat(np.arange(docs.shape[0]), np.diff(a.doc_offsets))
    shift = doc_offsets[docs] - a.doc_offsets[:-1]
    moved = np.arange(a.start.shape[0]) + shift[part_doc]
    start[moved], end[moved] = a.start, a.end
    slots.append((docs[a.slot_doc], a.slot_feature, a.slot_weight,
                  a.slot_first + shift[a.slot_doc], a.slot_length))
  slot_doc, feature, weight, first, length = (
      np.concatenate(column) for column in zip(*slots))
  order = np.argsort(first, kind='stable')  # tokens are in document order
  return Analysis(doc_offsets, start, end, slot_doc[order], feature[order],
                  weight[order], first[order], length[order])
