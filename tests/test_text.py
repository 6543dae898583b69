"""Text pipeline: tokenizer, hashing, n-grams, weighting, against references.

Counts, binary, TF-IDF, sublinear TF-IDF and L2 are compared with
scikit-learn's vectorizers given the same tokenizer and vocabulary; hashed ids
with an independent pure-Python poly64 (or FNV-1a) / fastText n-gram
computation.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction import text as sktext

from linjax.core.errors import ConfigError
from linjax.text import featurizer as text
from linjax.text import hashed_counts
from linjax.text import hashing
from linjax.text import poly_hash
from linjax.text import tokenizer
from linjax.text import weighting

REPO = Path(__file__).resolve().parents[1]

TRAIN = [
    'The cat sat on the mat. The cat!',
    'A dog, a DOG; and the cat?',
    'Health news: #Flu season, @CDCgov says: wash hands... wash hands.',
    'cat cat cat dog',
    'Read more at https://example.com/flu?id=3 now.',
    'Ünïcödé wörds: naïve café, résumé 42 times',
    'the end',
]
TEST = ['the cat and the dog', 'unknown words only xyz', '', 'cat . cat .']
PEERS = re.compile(r'\w+|[^\w\s]')  # /work/shared/bench/peers.py

# The plain settings a test means unless it names others: unigrams, raw
# counts, no min_df, no word shapes (FeaturizerOptions' defaults are the
# runner's: bigrams, shapes, min_df 2, sublinear tf-idf).
PLAIN = dict(ngrams=1, min_df=1, shape_ngrams=0, weighting='tf')


def plain_featurizer(**settings) -> text.Featurizer:
  return text.Featurizer(**{**PLAIN, **settings})


def _data_dir() -> Path:
  return Path(os.environ.get('LINJAX_DATA_DIR') or
              Path(__file__).resolve().parents[2] / 'shared' / 'data')


# -- tokenizer ---------------------------------------------------------------


def test_words_punct_and_tweet_tokens():
  doc = 'Hello, World! #Health @CNN see http://t.co/Ab1. It costs 3.50 (x2) a#b'
  tail = ['see', '<url>', '.', 'it', 'costs', '3', '.', '50', '(', 'x2', ')',
          'a', '#', 'b']
  assert tokenizer.tokenize(doc) == (
      ['hello', ',', 'world', '!', '#', 'health', '@', 'cnn'] + tail)
  assert tokenizer.tokenize(doc, kind='tweet') == (
      ['hello', ',', 'world', '!', '#health', '@cnn'] + tail)
  assert tokenizer.tokenize('A Www.Example.com/x, B', lowercase=False) == [
      'A', '<url>', ',', 'B']
  assert tokenizer.tokenize('Ünïcödé wörds!') == ['ünïcödé', 'wörds', '!']
  assert tokenizer.tokenize('') == []


def test_words_punct_matches_peers_without_urls():
  for doc in TRAIN + TEST + ['#tag @user x#y', 'a@b.c #1']:
    if not re.search(r'://|www\.', doc):
      assert tokenizer.tokenize(doc) == PEERS.findall(doc.lower())
    if not re.search(r'[#@]|://|www\.', doc):
      assert tokenizer.tokenize(doc, kind='tweet') == PEERS.findall(doc.lower())


def test_words_and_whitespace_tokenizers():
  sk = sktext.CountVectorizer().build_tokenizer()
  for doc in TRAIN:
    assert tokenizer.tokenize(doc, kind='words') == sk(doc.lower())
    assert tokenizer.tokenize(doc, lowercase=False, kind='words') == sk(doc)
    assert tokenizer.tokenize(doc, kind='whitespace') == doc.lower().split()
  with pytest.raises(ValueError, match='features.tokenizer'):
    tokenizer.tokenize('x', kind='chars')


@pytest.mark.parametrize('lowercase', [True, False])
def test_batch_tokenization_matches_tokenize(lowercase):
  # The batch path finds the documents that may hold URLs in one search.
  docs = ['www.a.com first', 'middle', 'ends with http://x.y/z', 'WWW.CAPS.ORG',
          'no url at all', 'odd a://b', 'Www.Mixed.com', 'www.', 'tail www.b.c']
  for kind in tokenizer.TOKENIZERS:
    f = plain_featurizer(buckets=0, tokenizer=kind, lowercase=lowercase,
                        normalize='none').fit(docs)
    sk = sktext.CountVectorizer(
        tokenizer=lambda d, k=kind: tokenizer.tokenize(d, lowercase, k),
        token_pattern=None, lowercase=False,
        vocabulary={f.feature_name(i): i for i in range(f.num_features)})
    np.testing.assert_array_equal(f.transform(docs).to_dense(),
                                  sk.transform(docs).toarray())


# -- hashing -----------------------------------------------------------------


def test_fnv1a_reference_vectors():
  # Published FNV-1a 32-bit test vectors.
  assert hashing.fnv1a_32('') == 0x811C9DC5
  assert hashing.fnv1a_32('a') == 0xE40C292C
  assert hashing.fnv1a_32('foobar') == 0xBF9CF968


def test_hash_tokens_matches_reference():
  tokens = ['', 'a', 'foobar', 'ünïcödé', '#flu', 'x' * 300, '😀', 'ab', 'ba']
  np.testing.assert_array_equal(
      text.hash_tokens(tokens, hashing.FNV1A),
      np.array([hashing.fnv1a_32(t) for t in tokens], np.uint32))
  np.testing.assert_array_equal(
      text.hash_tokens(tokens, hashing.POLY64),
      np.array([poly_hash.poly64(t) for t in tokens], np.uint64))
  for kind in hashing.HASHES:
    assert text.hash_tokens([], kind).shape == (0,)


ONE_TOKEN = {hashing.POLY64: poly_hash.poly64, hashing.FNV1A: hashing.fnv1a_32}


def _gram_bucket(tokens, buckets, kind=hashing.POLY64):
  """Independent pure-Python bucket of one n-gram (fastText combination)."""
  h = ONE_TOKEN[kind](tokens[0])
  for token in tokens[1:]:
    h = (h * 116049371 + ONE_TOKEN[kind](token)) % 2**64
  return h % buckets


def _reference_hashed_counts(docs, ngrams, buckets, kind=hashing.POLY64):
  """Bag of hashed 1..ngrams-grams of each document."""
  rows = []
  for doc in docs:
    tokens = tokenizer.tokenize(doc)
    rows.append(collections.Counter(
        _gram_bucket(tokens[i:i + n], buckets, kind)
        for n in range(1, ngrams + 1) for i in range(len(tokens) - n + 1)))
  return rows


@pytest.mark.parametrize('kind', hashing.HASHES)
@pytest.mark.parametrize('ngrams,buckets', [(1, 2**20), (2, 2**20), (3, 1000),
                                            (2, 7)])
def test_hashed_ngram_ids_and_counts(ngrams, buckets, kind):
  f = plain_featurizer(ngrams=ngrams, buckets=buckets, normalize='none',
                       hash=kind)
  x = f.fit_transform(TRAIN + TEST)
  x.validate()
  assert x.num_features == buckets
  for n, expected in enumerate(_reference_hashed_counts(TRAIN + TEST, ngrams,
                                                        buckets, kind)):
    lo, hi = x.indptr[n], x.indptr[n + 1]
    assert list(x.ids[lo:hi]) == sorted(expected)  # unique, ascending
    np.testing.assert_array_equal(x.weights[lo:hi],
                                  [expected[i] for i in sorted(expected)])


def test_ngrams_do_not_cross_documents():
  f = plain_featurizer(ngrams=2, buckets=2**20, normalize='none')
  apart = f.transform(['a', 'b'])
  together = f.transform(['a b'])
  assert apart.nnz == 2 and together.nnz == 3
  assert set(apart.ids) < set(together.ids)


def test_hashing_is_stable_across_processes():
  settings = dict(PLAIN, ngrams=2, buckets=4093)
  code = ('import json, sys; from linjax.text import featurizer as text; '
          f'x = text.Featurizer(**{settings!r}).transform('
          'json.loads(sys.stdin.read())); print(json.dumps(x.ids.tolist()))')
  here = plain_featurizer(**settings).transform(TRAIN).ids.tolist()
  for seed in ('1', '987'):
    env = dict(os.environ, PYTHONHASHSEED=seed, JAX_PLATFORMS='cpu',
               PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, '-c', code], input=json.dumps(TRAIN),
                         capture_output=True, text=True, env=env, check=True,
                         cwd=REPO)
    assert json.loads(out.stdout) == here


# -- vocabulary mode against scikit-learn ------------------------------------


def _sklearn(weighting, normalize, vocabulary, ngrams):
  common = dict(tokenizer=tokenizer.tokenize, token_pattern=None, lowercase=False,
                ngram_range=(1, ngrams), vocabulary=vocabulary)
  norm = None if normalize == 'none' else normalize
  if weighting in ('tf', 'binary') and norm is None:
    return sktext.CountVectorizer(binary=weighting == 'binary', **common)
  return sktext.TfidfVectorizer(
      binary=weighting == 'binary', use_idf=weighting.endswith('tfidf'),
      sublinear_tf=weighting == 'sublinear_tfidf', smooth_idf=True, norm=norm,
      **common)


@pytest.mark.parametrize('weighting', weighting.WEIGHTINGS)
@pytest.mark.parametrize('normalize', weighting.NORMALIZATIONS)
def test_vocabulary_mode_matches_sklearn(weighting, normalize):
  f = plain_featurizer(ngrams=2, buckets=0, weighting=weighting,
                      normalize=normalize)
  x_train = f.fit_transform(TRAIN)
  vocabulary = {f.feature_name(i): i for i in range(f.num_features)}
  sk = _sklearn(weighting, normalize, vocabulary, 2).fit(TRAIN)
  np.testing.assert_allclose(x_train.to_dense(),
                             sk.transform(TRAIN).toarray(), rtol=1e-6,
                             atol=1e-7)
  # New texts use the training IDF.
  np.testing.assert_allclose(f.transform(TEST).to_dense(),
                             sk.transform(TEST).toarray(), rtol=1e-6,
                             atol=1e-7)


def _ngram_counter(docs, ngrams):
  counts = collections.Counter()
  for doc in docs:
    tokens = tokenizer.tokenize(doc)
    for n in range(1, ngrams + 1):
      for i in range(len(tokens) - n + 1):
        counts[' '.join(tokens[i:i + n])] += 1
  return counts


def test_vocabulary_min_count_max_vocab_and_order():
  counts = _ngram_counter(TRAIN, 2)
  sk = sktext.CountVectorizer(tokenizer=tokenizer.tokenize, token_pattern=None,
                              lowercase=False, ngram_range=(1, 2)).fit(TRAIN)
  full = plain_featurizer(ngrams=2, buckets=0).fit(TRAIN)
  assert {full.feature_name(i) for i in range(full.num_features)} == set(
      sk.vocabulary_)
  ranked = sorted(counts, key=lambda s: (-counts[s], s))
  f = plain_featurizer(ngrams=2, buckets=0, min_count=2).fit(TRAIN)
  assert [f.feature_name(i) for i in range(f.num_features)] == [
      s for s in ranked if counts[s] >= 2]
  f = plain_featurizer(ngrams=2, buckets=0, max_vocab=5).fit(TRAIN)
  assert [f.feature_name(i) for i in range(f.num_features)] == ranked[:5]
  with pytest.raises(ValueError, match='vocabulary is empty'):
    plain_featurizer(buckets=0, min_count=100).fit(TRAIN)


@pytest.mark.parametrize('weighting', ['tf', 'sublinear_tfidf'])
def test_min_df_vocabulary_matches_sklearn(weighting):
  """min_df=2 keeps exactly scikit-learn's min_df=2 terms, same weights."""
  ours = plain_featurizer(ngrams=2, buckets=0, min_df=2, weighting=weighting)
  x = ours.fit_transform(TRAIN)
  sk = sktext.TfidfVectorizer(
      tokenizer=tokenizer.tokenize, token_pattern=None, lowercase=False,
      ngram_range=(1, 2), min_df=2, use_idf=weighting != 'tf',
      sublinear_tf=weighting == 'sublinear_tfidf', smooth_idf=True, norm='l2')
  sk.fit(TRAIN)
  for docs, got in ((TRAIN, x), (TEST, ours.transform(TEST))):
    expected = sk.transform(docs)
    for n in range(len(docs)):
      lo, hi = got.indptr[n], got.indptr[n + 1]
      mine = dict(zip(ours.feature_names(got.ids[lo:hi]),
                      got.weights[lo:hi].tolist()))
      row = expected.getrow(n)
      theirs = {sk.get_feature_names_out()[j]: v
                for j, v in zip(row.indices, row.data)}
      assert mine.keys() == theirs.keys()
      for key, value in theirs.items():
        np.testing.assert_allclose(mine[key], value, rtol=1e-6)


def test_min_df_drops_rare_hash_buckets():
  """Buckets in fewer than min_df training documents get no weight."""
  buckets = 2**20
  df = collections.Counter()
  for row in _reference_hashed_counts(TRAIN, 2, buckets):
    df.update(set(row))
  f = plain_featurizer(ngrams=2, buckets=buckets, min_df=2, normalize='none')
  f.fit(TRAIN)
  for docs in (TRAIN, TEST):
    x = f.transform(docs)
    for n, counts in enumerate(_reference_hashed_counts(docs, 2, buckets)):
      expected = {i: c for i, c in counts.items() if df[i] >= 2}
      lo, hi = x.indptr[n], x.indptr[n + 1]
      assert dict(zip(x.ids[lo:hi].tolist(),
                      x.weights[lo:hi].tolist())) == expected
  assert x.num_features == buckets
  # A document whose features are all rare becomes an empty row.
  assert f.transform(['xyzzy plugh']).nnz == 0
  with pytest.raises(ValueError, match='call fit'):
    plain_featurizer(min_df=2).transform(['a'])


@pytest.mark.parametrize('kwargs', [
    dict(ngrams=2), dict(ngrams=3, buckets=0), dict(ngrams=2, shape_ngrams=2,
                                                    min_df=2,
                                                    weighting='tfidf'),
    dict(ngrams=1, shape_ngrams=2, buckets=0, weighting='sublinear_tfidf')])
def test_featurising_in_chunks_changes_nothing(monkeypatch, kwargs):
  whole = plain_featurizer(**kwargs).fit_transform(TRAIN + TEST)
  monkeypatch.setattr(text, '_CHUNK_TOKENS', 5)  # a chunk per 1-2 documents
  monkeypatch.setattr(hashed_counts, 'CHUNK_CHARS', 40)  # hashing
  f = plain_featurizer(**kwargs)
  chunked = f.fit_transform(TRAIN + TEST)
  for u, v in zip(whole[:3], chunked[:3]):
    np.testing.assert_array_equal(u, v)
  again = f.transform(TEST)
  monkeypatch.setattr(text, '_CHUNK_TOKENS', 1 << 30)
  monkeypatch.setattr(hashed_counts, 'CHUNK_CHARS', 1 << 30)
  for u, v in zip(again[:3], f.transform(TEST)[:3]):
    np.testing.assert_array_equal(u, v)


def test_fit_transform_equals_fit_then_transform():
  for buckets in (0, 64):
    f = plain_featurizer(ngrams=3, buckets=buckets, weighting='tfidf')
    a = f.fit_transform(TRAIN)
    b = plain_featurizer(ngrams=3, buckets=buckets,
                        weighting='tfidf').fit(TRAIN).transform(TRAIN)
    for u, v in zip(a[:3], b[:3]):
      np.testing.assert_array_equal(u, v)


# -- rows, names, explanations -----------------------------------------------


def test_empty_documents_give_empty_rows():
  for buckets in (0, 2**20):
    f = plain_featurizer(buckets=buckets, weighting='sublinear_tfidf').fit(
        TRAIN)
    x = f.transform(['', '   ', 'cat', 'zzz unseen'])
    np.testing.assert_array_equal(x.row_lengths()[:2], [0, 0])
    assert np.all(np.isfinite(x.weights))
    np.testing.assert_allclose(np.linalg.norm(x.to_dense(), axis=1)[:3],
                               [0, 0, 1], rtol=1e-6)
  assert plain_featurizer().transform([]).num_docs == 0


def test_feature_names():
  f = plain_featurizer(ngrams=2, buckets=0).fit(TRAIN)
  counts = _ngram_counter(TRAIN, 2)
  assert f.feature_name(0) == min(counts, key=lambda s: (-counts[s], s))
  with pytest.raises(ValueError, match='outside'):
    f.feature_name(f.num_features)
  doc = 'a b c d e f g a'
  h = plain_featurizer(ngrams=2, buckets=5).fit([doc])
  counts = _ngram_counter([doc], 2)
  by_bucket = collections.defaultdict(set)
  for gram in counts:
    by_bucket[_gram_bucket(gram.split(' '), 5)].add(gram)
  for bucket in range(5):
    names = h.feature_name(bucket).split(' | ')
    if not by_bucket[bucket]:
      assert names == [f'<bucket {bucket}>']
      continue
    assert len(names) == min(len(by_bucket[bucket]), text.NAMES_PER_BUCKET)
    assert set(names) <= by_bucket[bucket]
    listed = [counts[n] for n in names]
    assert listed == sorted(listed, reverse=True)
    assert max(listed) == max(counts[g] for g in by_bucket[bucket])
  assert plain_featurizer(buckets=10).feature_name(3) == '<bucket 3>'


@pytest.mark.parametrize('buckets', [0, 2**20, 3])
@pytest.mark.parametrize('weighting', weighting.WEIGHTINGS)
@pytest.mark.parametrize('min_df', [1, 2])
def test_analyze_explains_logits(buckets, weighting, min_df):
  f = plain_featurizer(ngrams=2, buckets=buckets, weighting=weighting,
                      min_df=min_df)
  f.fit(TRAIN)
  rng = np.random.default_rng(0)
  w = rng.normal(size=(f.num_features, 4))
  b = rng.normal(size=4)
  for doc in TRAIN + TEST:
    items = f.analyze(doc)
    explained = sum((weight * w[fid] for _, fid, weight in items),
                    np.zeros(4)) + b
    logits = f.transform([doc]).to_dense()[0] @ w + b
    np.testing.assert_allclose(explained, logits, rtol=1e-5, atol=1e-6)
    for string, fid, _ in items:
      if buckets == 0:
        assert f.feature_name(fid) == string


# -- persistence and settings ------------------------------------------------


@pytest.mark.parametrize('buckets,weighting,min_df', [
    (0, 'tfidf', 1), (2**20, 'tf', 1), (2**20, 'sublinear_tfidf', 1),
    (0, 'binary', 1), (2**20, 'sublinear_tfidf', 2), (2**20, 'tf', 2),
    (0, 'tf', 2)])
def test_round_trip(tmp_path, buckets, weighting, min_df):
  f = plain_featurizer(ngrams=2, buckets=buckets, weighting=weighting,
                      max_vocab=30 if buckets == 0 else 0, min_df=min_df)
  before = f.fit_transform(TRAIN)
  ids = np.unique(before.ids)
  named = f.feature_names(ids[::2])  # a saved model keeps these names
  g = text.Featurizer.from_dict(json.loads(json.dumps(f.to_dict())))
  f.save(tmp_path / 'featurizer.json')
  h = text.Featurizer.load(tmp_path / 'featurizer.json')
  for other in (g, h):
    assert other.settings == f.settings
    assert other.num_features == f.num_features
    for docs in (TRAIN, TEST):
      x, y = f.transform(docs), other.transform(docs)
      for u, v in zip(x[:3], y[:3]):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(other.transform(TRAIN).weights,
                                  before.weights)
    assert other.feature_names(ids[::2]) == named
    if buckets:  # the others are not known without the training texts
      assert other.feature_names(ids[1::2]) == [f'<bucket {i}>'
                                                for i in ids[1::2]]
    else:
      assert other.feature_names(ids) == f.feature_names(ids)
    assert other.analyze(TRAIN[2]) == f.analyze(TRAIN[2])


def test_settings_validation_names_the_key():
  with pytest.raises(ValueError, match=r'features.ngrams must be >= 1, got 0'):
    text.Featurizer(ngrams=0)
  for kwargs, key in (({'tokenizer': 'chars'}, 'tokenizer'),
                      ({'weighting': 'idf'}, 'weighting'),
                      ({'normalize': 'l1'}, 'normalize'),
                      ({'buckets': -1}, 'buckets'),
                      ({'buckets': 2**31}, 'buckets'),
                      ({'min_count': 0}, 'min_count'),
                      ({'min_df': 0}, 'min_df'),
                      ({'max_vocab': 1.5}, 'max_vocab'),
                      ({'lowercase': 'yes'}, 'lowercase')):
    with pytest.raises(ValueError, match=f'features.{key}'):
      text.Featurizer(**kwargs)
  with pytest.raises(ConfigError, match='features.ngrams'):
    text.FeaturizerOptions(ngrams=0)
  with pytest.raises(TypeError, match='colour'):
    text.Featurizer(colour=1)  # pylint: disable=unexpected-keyword-arg


def test_defaults_are_the_options_defaults():
  defaults = text.FeaturizerOptions()
  assert text.Featurizer().options == defaults
  assert text.Featurizer().settings == dataclasses.asdict(defaults)
  assert (defaults.ngrams, defaults.min_df, defaults.shape_ngrams,
          defaults.weighting) == (2, 2, 2, 'sublinear_tfidf')
  variant = dataclasses.replace(defaults, ngrams=3, buckets=np.int64(64),
                                lowercase=np.bool_(False))
  f = text.Featurizer.from_options(variant)
  assert f.options == variant and f.ngrams == 3
  assert type(f.settings['buckets']) is int  # pylint: disable=unidiomatic-typecheck
  assert type(f.settings['lowercase']) is bool  # pylint: disable=unidiomatic-typecheck
  with pytest.raises(TypeError, match='FeaturizerOptions'):
    text.Featurizer.from_options({'ngrams': 3})


def test_default_config_features_are_featurizer_options():
  sys.path.insert(0, str(REPO))
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  features = default.get_config().features.to_dict()
  options = text.FeaturizerOptions(**features)
  assert dataclasses.asdict(options) == features
  assert text.Featurizer.from_options(options).num_features == features[
      'buckets']


def test_transform_before_fit():
  with pytest.raises(ValueError, match='call fit'):
    plain_featurizer(buckets=0).transform(['a'])
  with pytest.raises(ValueError, match='call fit'):
    plain_featurizer(weighting='tfidf').transform(['a'])
  # Plain hashing needs nothing fitted.
  assert plain_featurizer(buckets=16).transform(['a b']).nnz == 2


def test_real_corpus_sample():
  path = _data_dir() / 'healthtweets' / 'train.tsv'
  if not path.exists():
    pytest.skip(f'{path} not found (set LINJAX_DATA_DIR)')
  lines = path.read_text(encoding='utf-8').split('\n')[1:3001]
  docs = [line.partition('\t')[2] for line in lines if line]
  plain = [d for d in docs if not re.search(r'[#@]|://|www\.', d.lower())]
  assert len(plain) > 100
  assert [tokenizer.tokenize(d) for d in plain] == [PEERS.findall(d.lower())
                                               for d in plain]
  f = plain_featurizer(ngrams=2)
  x = f.fit_transform(docs)
  np.testing.assert_allclose(np.linalg.norm(x.to_padded()[1], axis=1), 1.0,
                             rtol=1e-5)
  for n, counts in enumerate(_reference_hashed_counts(docs[:200], 2, 2**20)):
    assert list(x.ids[x.indptr[n]:x.indptr[n + 1]]) == sorted(counts)


def test_bucket_names_asked_before_pickling_survive_it():
  import pickle  # pylint: disable=g-import-not-at-top
  f = plain_featurizer(ngrams=2, shape_ngrams=2, buckets=2**20)
  x = f.fit_transform(TRAIN)
  ids = np.unique(x.ids)
  names = f.feature_names(ids)
  g = pickle.loads(pickle.dumps(f))  # the names, not the training texts
  h = text.Featurizer.from_dict(json.loads(json.dumps(f.to_dict())))
  assert names == g.feature_names(ids) == h.feature_names(ids)
  assert 'cat' in names or any('cat' in name.split(' | ') for name in names)
  assert g.to_dict() == f.to_dict()
  assert '_name_texts' in f.__dict__ and f._name_texts is not None  # pylint: disable=protected-access
  assert g._name_texts is None  # pylint: disable=protected-access
