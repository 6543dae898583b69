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

import numpy as np

from linjax.text.tokenizer import Tokens
from linjax.text.tokenizer import index_tokens

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


def lowercase_tokens(cased: Tokens) -> Tokens | None:
  """The tokens of the lower-cased texts, from those of the original texts.

  Equal to tokenising the lower-cased texts again (``words_punct`` and
  ``tweet``) whenever lower-casing keeps every token one token of its kind:
  a word stays word characters, a mark stays one non-word character. That
  holds unless a letter lower-cases to a combining mark (e.g. "İ" -> "i̇")
  or a token holds a capital sigma (its lower case depends on the next
  character); then this returns None and the caller tokenises again. Distinct strings
  keep first-occurrence order: ``cased.strings`` is in that order, so the
  first of a lower-cased string's variants is its first occurrence.
  """
  lowered = list(map(str.lower, cased.strings))
  for token, low in zip(cased.strings, lowered):
    # Capital sigma lower-cases by context (final or not): the neighbours in
    # the text decide, not the token alone.
    if low != token and (not _same_kind(token, low) or '\u03a3' in token):
      return None
  # Number the lower-cased strings in order of first appearance.
  distinct = index_tokens([lowered])
  return Tokens(distinct.strings, distinct.tok[cased.tok], cased.lengths)


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
  shape_of = np.fromiter(
      (_INDEX.get(token_shape(s), -1) for s in cased.strings), np.int64,
      len(cased.strings))
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
