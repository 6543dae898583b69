"""Per-token contributions of a linear model, on the documents' own text.

Host numpy. Shapes: N documents, T tokens, S feature slots, F features,
C classes.

A document's score for class c is ``sum_s weight[s] * W[id[s], c] + b[c]``
over its feature slots s (one slot per occurrence of an n-gram, or of a
shape n-gram; a feature seen k times in the document gives each
occurrence 1/k of its final weight, as `Featurizer.analyze` splits it).
A slot covers the n tokens of its n-gram; its contribution to "class t
against class o" is ``weight[s] * (W[id[s], t] - W[id[s], o])``, shared
evenly by the tokens it covers. A token's contribution is the sum of its
shares, so the tokens of a document add up exactly to
``logit_t - logit_o - (b_t - b_o)``: the salience of a linear model is
exact.

`Slots` holds this layout for a batch of documents: the tokens' character
spans in the original text (a shape token has the span of the word it
shapes) and the slots flat. `document_slots` gets it from the featuriser's
batch analysis (``Featurizer.analyze_batch``) when it has one, else from
`reference_slots`, one document at a time from ``Featurizer.analyze``.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from linjax.text import batch_analysis
from linjax.text import shapes as shapes_lib
from linjax.text import tokenizer as tokenizer_lib


# The layout is the text layer's batch analysis (linjax/text/batch_analysis).
Slots = batch_analysis.Analysis


def token_contributions(W, slots: Slots, target, other) -> np.ndarray:
  """float64 [T]: each token's share of ``logit_target - logit_other``.

  Args:
    W: [F, C] the weights.
    slots: the documents' `Slots`.
    target: int [N] the class each document is explained for.
    other: int [N] the class it is explained against; -1: none (the raw
      score of ``target``, e.g. a sigmoid label).

  Returns:
    float64 [T]; per document they sum to the score difference minus the
    bias difference.
  """
  W = np.asarray(W)
  target = np.asarray(target, np.int64)
  other = np.asarray(other, np.int64)
  doc, feature = slots.slot_doc, slots.slot_feature
  # Two entries of W per slot, not its whole row.
  score = W[feature, target[doc]].astype(np.float64)
  against = other[doc]
  has_other = against >= 0
  score[has_other] -= W[feature[has_other], against[has_other]]
  share = slots.slot_weight * score / np.maximum(slots.slot_length, 1)
  # Every (slot, covered token) pair: the slot's share goes to each token.
  length = slots.slot_length
  pair_slot = np.repeat(np.arange(length.shape[0]), length)
  first_pair = np.cumsum(length) - length
  token = (slots.slot_first[pair_slot] + np.arange(pair_slot.shape[0])
           - first_pair[pair_slot])
  return np.bincount(token, weights=share[pair_slot],
                     minlength=slots.start.shape[0])


def merged_spans(slots: Slots, values: np.ndarray):
  """Per document, its distinct token spans and their summed values.

  A shape token shares its word's span; their contributions add up.

  Args:
    slots: the `Slots` of N documents.
    values: float [T] per-token values (`token_contributions`).

  Returns:
    (doc_offsets int64 [N+1], start int64 [U], end int64 [U], value
    float64 [U]): the U distinct (document, start, end) spans, in reading
    order within each document.
  """
  num = slots.start.shape[0]
  doc_of = np.repeat(np.arange(slots.num_docs),
                     np.diff(slots.doc_offsets)).astype(np.int64)
  if not num:
    return (np.zeros(slots.num_docs + 1, np.int64),) + (
        np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
  if num and max(int(slots.end.max()), 1) < 2**24 and slots.num_docs < 2**15:
    # One int64 sort key (doc, start, end): faster than a 3-key lexsort.
    order = np.argsort((doc_of << 48) | (slots.start << 24) | slots.end,
                       kind='stable')
  else:
    order = np.lexsort((slots.end, slots.start, doc_of))
  d, s, e = doc_of[order], slots.start[order], slots.end[order]
  new = np.ones(num, bool)
  new[1:] = (d[1:] != d[:-1]) | (s[1:] != s[:-1]) | (e[1:] != e[:-1])
  group = np.cumsum(new) - 1
  value = np.bincount(group, weights=np.asarray(values, np.float64)[order],
                      minlength=int(group[-1]) + 1)
  offsets = np.searchsorted(d[new], np.arange(slots.num_docs + 1))
  return offsets.astype(np.int64), s[new], e[new], value


def _astral_before(text: str) -> np.ndarray | None:
  """int64 [len(text) + 1]: characters outside the Basic Multilingual
  Plane before each position; None when there are none (the usual case)."""
  if text.isascii() or len(text.encode('utf-16-le', 'surrogatepass')) == (
      2 * len(text)):
    return None
  points = np.frombuffer(text.encode('utf-32-le', 'surrogatepass'),
                         np.uint32)
  return np.concatenate([[0], np.cumsum(points > 0xFFFF)])


def utf16_offsets(text: str, positions: np.ndarray) -> np.ndarray:
  """Code-point positions in ``text`` -> UTF-16 code-unit positions.

  JavaScript strings index UTF-16 code units: a character outside the
  Basic Multilingual Plane (an emoji) counts twice.
  """
  positions = np.asarray(positions, np.int64)
  astral = _astral_before(text)
  return positions if astral is None else positions + astral[positions]


def encoded_spans(texts: Sequence[str], offsets: np.ndarray,
                  start: np.ndarray, end: np.ndarray,
                  value: np.ndarray) -> list[str]:
  """Each document's spans as one compact string for the page.

  Args:
    texts: the N documents.
    offsets, start, end, value: `merged_spans` of their tokens.

  Returns:
    N strings ``'gap,length,value,gap,length,value,...'``: each span as
    its distance from the previous span's end (from 0 for the first) and
    its length, in UTF-16 code units (JavaScript's string indices; short
    numbers even in long documents), and its value to 3 significant
    digits (the sign of any non-zero value kept).
  """
  start = np.asarray(start, np.int64).copy()
  end = np.asarray(end, np.int64).copy()
  for n, text in enumerate(texts):
    if not text.isascii():   # rare: only these can hold astral characters
      astral = _astral_before(text)
      if astral is not None:
        lo, hi = offsets[n], offsets[n + 1]
        start[lo:hi] += astral[start[lo:hi]]
        end[lo:hi] += astral[end[lo:hi]]
  previous_end = np.zeros_like(end)
  previous_end[1:] = end[:-1]
  previous_end[np.asarray(offsets[:-1])[np.diff(offsets) > 0]] = 0
  fields = [None] * (3 * start.shape[0])
  fields[0::3] = (start - previous_end).tolist()
  fields[1::3] = (end - start).tolist()
  fields[2::3] = np.asarray(value, np.float64).tolist()
  # One %-format of every number at once (C speed), documents split by a
  # newline that no number contains.
  pattern = '\n'.join(','.join(['%d,%d,%.3g'] * count)
                       for count in np.diff(offsets).tolist())
  return (pattern % tuple(fields)).split('\n') if len(texts) else []


# The reference analysis: one document at a time. ------------------------------

_URL = tokenizer_lib.URL_REGEX.pattern
_TOKEN_PATTERNS = {
    'words_punct': re.compile(_URL + r'|\w+|[^\w\s]', re.IGNORECASE),
    'tweet': re.compile(_URL + r'|\w+|(?<!\w)[#@]\w+|[^\w\s]', re.IGNORECASE),
    'words': re.compile(r'(?u)\b\w\w+\b'),
    'whitespace': re.compile(r'\S+'),
}


def _token_spans(text: str, lowercase: bool, kind: str):
  """[(start, end, token string as featurised, cased token)] of one text."""
  lowered = text.lower() if lowercase else text
  back = None
  if len(lowered) != len(text):   # rare: a character lower-cases to several
    lengths = [len(ch.lower()) for ch in text]
    back = np.repeat(np.arange(len(text)), lengths)   # lowered -> original
  url_aware = kind in ('words_punct', 'tweet')
  out = []
  for m in _TOKEN_PATTERNS[kind].finditer(lowered):
    s, e = m.span()
    if back is not None:   # the original characters the token came from
      s, e = int(back[s]), int(back[e - 1]) + 1
    token = m.group()
    cased = text[s:e]
    if url_aware and tokenizer_lib.URL_REGEX.fullmatch(token):
      token = cased = tokenizer_lib.URL_TOKEN
    out.append((s, e, token, cased))
  return out


def _occurrences(featurizer, text: str):
  """[(string, first token, n tokens)] of every n-gram and shape n-gram,
  and the tokens' spans (shape tokens after the words, with their spans)."""
  settings = featurizer.settings
  toks = _token_spans(text, settings['lowercase'], settings['tokenizer'])
  spans = [(s, e) for s, e, _, _ in toks]
  words = [t for _, _, t, _ in toks]
  grams = []
  for n in range(1, settings['ngrams'] + 1):
    grams += [(' '.join(words[i:i + n]), i, n)
              for i in range(len(words) - n + 1)]
  if settings['shape_ngrams']:
    # Shapes are of the tokens of the original-case text.
    cased = (_token_spans(text, False, settings['tokenizer'])
             if settings['lowercase'] else toks)
    shaped = [(shapes_lib.token_shape(c), (s, e)) for s, e, _, c in cased]
    shaped = [(sh, span) for sh, span in shaped if sh is not None]
    base = len(spans)
    spans += [span for _, span in shaped]
    names = [sh for sh, _ in shaped]
    for n in range(1, settings['shape_ngrams'] + 1):
      grams += [(' '.join(names[i:i + n]), base + i, n)
                for i in range(len(names) - n + 1)]
  return grams, spans


def reference_slots(featurizer, texts: Sequence[str]) -> Slots:
  """`Slots` of ``texts``, one document at a time (`Featurizer.analyze`).

  Each distinct n-gram string of ``analyze`` (its weight already split by
  count) is shared evenly by its occurrences, found by re-tokenising the
  original text with spans; a string ``analyze`` does not return (outside
  the vocabulary, or dropped by min_df) gets no slot.
  """
  offsets, starts, ends = [0], [], []
  slot_doc, slot_feature, slot_weight, slot_first, slot_length = (
      [], [], [], [], [])
  for n_doc, text in enumerate(texts):
    grams, spans = _occurrences(featurizer, text)
    base = len(starts)
    starts += [s for s, _ in spans]
    ends += [e for _, e in spans]
    offsets.append(len(starts))
    by_string: dict[str, list] = {}
    for string, first, n in grams:
      by_string.setdefault(string, []).append((first, n))
    for string, feature_id, weight in featurizer.analyze(text):
      where = by_string.get(string, ())
      for first, n in where:
        slot_doc.append(n_doc)
        slot_feature.append(feature_id)
        slot_weight.append(weight / len(where))
        slot_first.append(base + first)
        slot_length.append(n)
  ints = [np.asarray(v, np.int64) for v in (
      offsets, starts, ends, slot_doc, slot_feature)]
  return Slots(*ints, np.asarray(slot_weight, np.float64),
               np.asarray(slot_first, np.int64),
               np.asarray(slot_length, np.int64))


def document_slots(featurizer, texts: Sequence[str]) -> Slots:
  """`Slots` of ``texts``: the featuriser's batch analysis if it has one,
  else `reference_slots`."""
  batch = getattr(featurizer, 'analyze_batch', None)
  if batch is None:
    return reference_slots(featurizer, texts)
  return from_batch_analysis(batch(list(texts)))


def from_batch_analysis(analysis) -> Slots:
  """`Slots` from ``Featurizer.analyze_batch``'s result (its field names
  are read as they are; see linjax/text/featurizer.py)."""
  get = (analysis.get if isinstance(analysis, dict)
         else lambda k: getattr(analysis, k))
  return Slots(*(np.asarray(get(k)) for k in Slots._fields))
