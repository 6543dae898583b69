"""`Featurizer.analyze_batch`: every document's tokens and feature slots.

Checked against independent computations: the slots' weights summed per
(document, feature) are ``transform``'s rows; each token's span holds the
regex tokenizer's token (`tokenizer.tokenize`), shape tokens the spans of
the original-case tokens that have a word shape (`shapes.token_shape`); the
tokens a slot covers are its n-gram (vocabulary mode: the entry's string;
hashing: the bucket of the covered strings, hashed with the one-token
Python reference); per document, the weights grouped by n-gram string equal
`Featurizer.analyze`'s. For several settings, both hashes, and text that
takes the vectorised scan's special cases (URLs, "İ", final sigma).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from linjax.text import featurizer as text
from linjax.text import hashing
from linjax.text import poly_hash
from linjax.text import shapes
from linjax.text import tokenizer

DOCS = [
    'The cat sat on the mat. The cat!', 'A dog, a DOG; and the cat?',
    'Health news: #Flu season, @CDCgov says: wash hands... wash hands.',
    'cat cat cat dog dog', 'Read more at https://example.com/flu?id=3 now.',
    'Ünïcödé wörds: naïve café, résumé 42 times', 'the end', '', '   ',
    'İstanbul İzmir and the cat', 'ΟΔΟΣ. ΣΑΣ the end', 'Flu FLU fLu 2014 H1N1']
TRAIN = DOCS[:7] + ['the cat and the dog', 'a mat, a cat']
ONE_TOKEN = {hashing.POLY64: poly_hash.poly64, hashing.FNV1A: hashing.fnv1a_32}

SETTINGS = [
    dict(),
    dict(hash=hashing.FNV1A),
    dict(min_df=1, weighting='tf', normalize='none'),
    dict(buckets=64, min_df=1),                      # collisions in a doc
    dict(shape_ngrams=0, ngrams=3, min_df=1),
    dict(lowercase=False, min_df=1),
    dict(tokenizer='tweet', min_df=1),
    dict(tokenizer='whitespace', shape_ngrams=1, min_df=1),
    dict(buckets=0, min_df=1, weighting='tfidf'),
    dict(buckets=0, min_df=2),
]


def _fit(settings):
  return text.Featurizer(**settings).fit(TRAIN)


def _doc_tokens(a, d):
  lo, hi = a.doc_offsets[d], a.doc_offsets[d + 1]
  return a.start[lo:hi], a.end[lo:hi]


@pytest.mark.parametrize('settings', SETTINGS)
def test_slot_weights_sum_to_transform(settings):
  f = _fit(settings)
  a = f.analyze_batch(DOCS)
  assert a.num_docs == len(DOCS)
  dense = np.zeros((len(DOCS), f.num_features))
  np.add.at(dense, (a.slot_doc, a.slot_feature), a.slot_weight)
  np.testing.assert_allclose(dense, f.transform(DOCS).to_dense(), rtol=1e-6,
                             atol=1e-9)
  # ... so the slots give the logits of any W, b.
  rng = np.random.default_rng(0)
  W, b = rng.normal(size=(f.num_features, 3)), rng.normal(size=3)
  logits = np.zeros((len(DOCS), 3))
  np.add.at(logits, a.slot_doc, a.slot_weight[:, None] * W[a.slot_feature])
  np.testing.assert_allclose(logits + b,
                             f.transform(DOCS).to_dense() @ W + b, rtol=1e-5,
                             atol=1e-6)


@pytest.mark.parametrize('settings', SETTINGS)
def test_tokens_spans_and_slots(settings):
  f = _fit(settings)
  kind = f.tokenizer
  a = f.analyze_batch(DOCS)
  assert np.all(np.diff(a.slot_doc) >= 0)
  for d, doc in enumerate(DOCS):
    start, end = _doc_tokens(a, d)
    words = tokenizer.tokenize(doc, f.lowercase, kind)
    cased = tokenizer.tokenize(doc, False, kind)
    shaped = [t for t in cased if shapes.token_shape(t)] if (
        f.shape_ngrams) else []
    assert len(start) == len(words) + len(shaped), doc
    spans = [doc[s:e] for s, e in zip(start.tolist(), end.tolist())]
    if 'İ' not in doc:  # "İ" lower-cases to two characters
      got = [tokenizer.URL_TOKEN if tokenizer.URL_REGEX.fullmatch(s)
             and kind in ('words_punct', 'tweet') else
             (s.lower() if f.lowercase else s) for s in spans[:len(words)]]
      assert got == words, doc
    else:
      assert all(0 <= s < e <= len(doc) for s, e in zip(start, end))
    assert [s for s in spans[len(words):]] == [
        t if not tokenizer.URL_REGEX.fullmatch(t) else t for t in shaped]
    # Each slot covers its n-gram's tokens, inside one segment.
    mine = a.slot_doc == d
    first = a.slot_first[mine] - a.doc_offsets[d]
    length = a.slot_length[mine]
    assert np.all(length >= 1) and np.all(first >= 0)
    is_word = first < len(words)
    assert np.all(first[is_word] + length[is_word] <= len(words))
    assert np.all(first + length <= len(words) + len(shaped))
    names = [' '.join(words[i:i + n]) if i < len(words) else ' '.join(
        shapes.token_shape(t) for t in shaped[i - len(words):
                                              i - len(words) + n])
             for i, n in zip(first.tolist(), length.tolist())]
    for name, feature in zip(names, a.slot_feature[mine].tolist()):
      if f.buckets == 0:
        assert f.feature_name(feature) == name
      else:
        one = ONE_TOKEN[f.hash]
        grams = name.split(' ')
        h = one(grams[0])
        for g in grams[1:]:
          h = (h * 116049371 + one(g)) % 2**64
        assert h % f.buckets == feature, name
    # Per n-gram string, the weights analyze gives for the document.
    if 'İ' not in doc:
      by_name = collections.defaultdict(float)
      for name, w in zip(names, a.slot_weight[mine].tolist()):
        by_name[name] += w
      want = {s: w for s, _, w in f.analyze(doc)}
      assert by_name.keys() == want.keys(), doc
      for name, w in want.items():
        assert by_name[name] == pytest.approx(w, rel=1e-6), (doc, name)


def test_nothing_to_analyze():
  f = _fit({})
  a = f.analyze_batch([])
  assert a.num_docs == 0 and a.start.shape == (0,) and a.slot_doc.shape == (0,)
  a = f.analyze_batch(['', '  ', 'zzz qqq'])   # unseen words: min_df drops
  assert a.num_docs == 3
  np.testing.assert_array_equal(a.doc_offsets, [0, 0, 0, 4])
  # Only the shapes ('<x>', '<x> <x>': seen in training) keep slots.
  assert set(a.slot_doc.tolist()) == {2} and np.all(a.slot_first >= 2)
  with pytest.raises(TypeError, match='one string'):
    f.analyze_batch('one document')


def test_unfitted_featurizer_refuses():
  with pytest.raises(ValueError, match='fit'):
    text.Featurizer().analyze_batch(['a'])
