"""Word-shape features: shapes of tokens, shape n-grams, lower-casing reuse.

Expected shapes and bucket counts are written out by hand or computed with
the pure-Python reference hashing of test_text.py, not with linjax/text/shapes.py.
"""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from linjax.text import shapes
from linjax.text import featurizer as text
from linjax.text import poly_hash
from linjax.text import tokenizer


@pytest.mark.parametrize('token,shape', [
    ('flu', '<x>'), ('covid19', '<x>'), ('2014', '<d>'), ('I', '<X>'),
    ('CDC', '<XX>'), ('H1N1', '<XX>'), ('Flu', '<Xx>'), ('Covid19', '<Xx>'),
    ('iPhone', '<xX>'), ('McCain', '<xX>'), ('_', '<w>'), ('漢字', '<w>'),
    ('Ärzte', '<Xx>'), ('ÉCOLE', '<XX>'), ('.', None), ('#', None),
    ('<url>', None), ('', None)])
def test_token_shape(token, shape):
  assert shapes.token_shape(token) == shape


# The plain settings a test means unless it names others: unigrams, raw
# counts, no min_df, no word shapes (FeaturizerOptions' defaults are the
# runner's: bigrams, shapes, min_df 2, sublinear tf-idf).
PLAIN = dict(ngrams=1, min_df=1, shape_ngrams=0, weighting='tf')


def plain_featurizer(**settings) -> text.Featurizer:
  return text.Featurizer(**{**PLAIN, **settings})


def _bucket(tokens, buckets):
  """Pure-Python poly64 and fastText n-gram combination (as test_text.py)."""
  h = poly_hash.poly64(tokens[0])
  for token in tokens[1:]:
    h = (h * 116049371 + poly_hash.poly64(token)) % 2**64
  return h % buckets


@pytest.mark.parametrize('ngrams,shape_ngrams', [(2, 2), (1, 2), (2, 1),
                                                 (3, 1)])
def test_hashed_shape_ngrams_hand_worked(ngrams, shape_ngrams):
  docs = ['Study Finds Coffee, CDC says', 'the END 42', '...', '']
  words = [['study', 'finds', 'coffee', ',', 'cdc', 'says'],
           ['the', 'end', '42'], ['.', '.', '.'], []]
  shaped = [['<Xx>', '<Xx>', '<Xx>', '<XX>', '<x>'], ['<x>', '<XX>', '<d>'],
            [], []]
  buckets = 2**20
  f = plain_featurizer(ngrams=ngrams, shape_ngrams=shape_ngrams,
                      buckets=buckets, normalize='none')
  x = f.fit_transform(docs)
  x.validate()
  assert x.num_docs == len(docs)
  for n, (w, s) in enumerate(zip(words, shaped)):
    expected = collections.Counter(
        _bucket(w[i:i + k], buckets) for k in range(1, ngrams + 1)
        for i in range(len(w) - k + 1))
    expected.update(
        _bucket(s[i:i + k], buckets) for k in range(1, shape_ngrams + 1)
        for i in range(len(s) - k + 1))
    lo, hi = x.indptr[n], x.indptr[n + 1]
    assert dict(zip(x.ids[lo:hi].tolist(), x.weights[lo:hi].tolist())) == (
        dict(expected))


def test_vocabulary_names_shape_ngrams():
  f = plain_featurizer(ngrams=1, shape_ngrams=2, buckets=0)
  f.fit(['Big News Today', 'big news'])
  names = {f.feature_name(i) for i in range(f.num_features)}
  assert names == {'big', 'news', 'today', '<Xx>', '<x>', '<Xx> <Xx>',
                   '<x> <x>'}
  items = {s: w for s, _, w in f.analyze('Big news')}
  assert set(items) == {'big', 'news', '<Xx>', '<x>'}  # '<Xx> <x>' unseen


def test_shapes_off_leaves_features_unchanged():
  docs = ['Study Finds Coffee Cuts Risk', 'CDC: wash hands', 'the end']
  plain = plain_featurizer(ngrams=2, normalize='none').fit_transform(docs)
  shaped = plain_featurizer(ngrams=2, shape_ngrams=2,
                           normalize='none').fit_transform(docs)
  names = ['<x>', '<Xx>', '<XX>', '<X>', '<d>', '<xX>', '<w>']
  shape_ids = {_bucket(s.split(), 2**20) for s in names} | {
      _bucket([a, b], 2**20) for a in names for b in names}
  for n in range(len(docs)):
    a = dict(zip(plain.ids[plain.indptr[n]:plain.indptr[n + 1]].tolist(),
                 plain.weights[plain.indptr[n]:plain.indptr[n + 1]].tolist()))
    b = dict(zip(shaped.ids[shaped.indptr[n]:shaped.indptr[n + 1]].tolist(),
                 shaped.weights[shaped.indptr[n]:shaped.indptr[n + 1]]
                 .tolist()))
    assert {k: v for k, v in b.items() if k not in shape_ids} == a


EDGE_DOCS = [
    'İstanbul İzmir', 'ΣΊΣΥΦΟΣ Straße', 'ǅemal ǈubljana', 'Ⓐⓑ ⅠⅡ', 'Ⅻ',
    '#Flu @CDCgov a#B', 'x\u0130y', 'ABC_DEF __init__', 'ﬁ ﬂ FIX',
    'Visit HTTP://Example.COM/A now', '']


@pytest.mark.parametrize('kind', ['words_punct', 'tweet'])
def test_lowercase_tokens_equals_tokenising_lowercased_text(kind):
  rng = np.random.default_rng(0)
  alphabet = list('aAbBzZ09_#@.,!? \t\n') + ['İ', 'Σ', 'ß', 'ǅ', 'Ⅻ', 'É',
                                            'ﬁ', '\u0307', '漢', '😀']
  docs = EDGE_DOCS + [''.join(rng.choice(alphabet, size=rng.integers(0, 30)))
                      for _ in range(300)]
  for batch in [[d] for d in docs] + [docs, docs[::-1], docs[10:]]:
    cased = tokenizer.tokenize_batch(batch, False, kind)
    want = tokenizer.tokenize_batch(batch, True, kind)
    got = shapes.lowercase_tokens(cased, batch, kind)
    assert got.strings == want.strings, batch
    np.testing.assert_array_equal(got.tok, want.tok)
    np.testing.assert_array_equal(got.lengths, want.lengths)


def test_featurizer_falls_back_when_lowercasing_splits_a_token():
  docs = ['İstanbul Flu', 'istanbul flu']
  f = plain_featurizer(ngrams=1, shape_ngrams=1, buckets=0).fit(docs)
  words = {f.feature_name(i) for i in range(f.num_features)}
  reference = {t for d in docs for t in tokenizer.tokenize(d)}
  assert reference <= words
  # The case this test is about: lower-casing 'İ' gives 'i' + U+0307, which
  # the tokenizer splits, so the cased word is not one lower-cased token.
  assert len(tokenizer.tokenize('İstanbul')) > 1
  assert len(tokenizer.tokenize('İstanbul', lowercase=False)) == 1
  assert {'<Xx>', '<x>'} <= words


@pytest.mark.parametrize('buckets', [0, 2**20])
def test_round_trip_and_analyze_with_shapes(buckets):
  docs = ['Study Finds Coffee Cuts Risk', 'CDC says wash hands', 'the end',
          'More Study Of Coffee']
  f = plain_featurizer(ngrams=2, shape_ngrams=2, buckets=buckets, min_df=2,
                      weighting='sublinear_tfidf')
  x = f.fit_transform(docs)
  g = text.Featurizer.from_dict(json.loads(json.dumps(f.to_dict())))
  np.testing.assert_array_equal(g.transform(docs).weights, x.weights)
  np.testing.assert_array_equal(g.transform(docs).ids, x.ids)
  assert g.analyze(docs[0]) == f.analyze(docs[0])
  rng = np.random.default_rng(0)
  w = rng.normal(size=(f.num_features, 3))
  for doc in docs + ['Coffee Study']:
    explained = sum((weight * w[fid] for _, fid, weight in f.analyze(doc)),
                    np.zeros(3))
    np.testing.assert_allclose(explained,
                               f.transform([doc]).to_dense()[0] @ w,
                               rtol=1e-5, atol=1e-6)


def test_shape_ngrams_validation():
  with pytest.raises(ValueError, match='features.shape_ngrams'):
    text.Featurizer(shape_ngrams=-1)
