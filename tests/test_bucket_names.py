"""`Featurizer.bucket_names`: the training n-grams of each hash bucket.

Checked against a brute-force reference written here: every n-gram of every
training document (the regex tokenizer, `shapes.token_shape` for shape
n-grams), hashed with the one-token Python references and fastText's
combiner, grouped by bucket: the names must be the k most frequent (ties by
string), the counts their training counts, ``num_distinct`` the number of
distinct n-grams in the bucket; for both hashes, with and without shapes,
with few buckets (many collisions), in small chunks, for other tokenizers
(the token path), and on a real corpus. Saving keeps the buckets named so
far, and a model saved before format 4 (every bucket's names, no counts)
still names its buckets.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import numpy as np
import pytest

from linjax.data.corpus import read_corpus
from linjax.text import bucket_contents
from linjax.text import featurizer as text
from linjax.text import hashed_counts
from linjax.text import hashing
from linjax.text import ngram_names
from linjax.text import poly_hash
from linjax.text import shapes
from linjax.text import tokenizer

DOCS = [
    'The cat sat on the mat. The cat!', 'A dog, a DOG; and the cat?',
    'Health news: #Flu season, @CDCgov says: wash hands... wash hands.',
    'cat cat cat dog', 'Read more at https://example.com/flu?id=3 now.',
    'Ünïcödé wörds: naïve café, résumé 42 times', 'the end',
    'İstanbul İzmir and ΟΔΟΣ. ΣΑΣ', '', 'Flu FLU flu fLu 2014 H1N1']
ONE_TOKEN = {hashing.POLY64: poly_hash.poly64, hashing.FNV1A: hashing.fnv1a_32}


def _data_dir() -> Path:
  return Path(os.environ.get('LINJAX_DATA_DIR') or
              Path(__file__).resolve().parents[2] / 'shared' / 'data')


def _reference(docs, settings):
  """bucket -> Counter(n-gram string -> training count), brute force."""
  one = ONE_TOKEN[settings.get('hash', hashing.POLY64)]
  buckets = settings['buckets']
  kind = settings.get('tokenizer', 'words_punct')
  out = collections.defaultdict(collections.Counter)

  def add(tokens, order):
    for n in range(1, order + 1):
      for i in range(len(tokens) - n + 1):
        gram = tokens[i:i + n]
        h = one(gram[0])
        for token in gram[1:]:
          h = (h * 116049371 + one(token)) % 2**64
        out[h % buckets][' '.join(gram)] += 1

  for doc in docs:
    add(tokenizer.tokenize(doc, True, kind), settings['ngrams'])
    if settings.get('shape_ngrams'):
      cased = tokenizer.tokenize(doc, False, kind)
      add([s for s in map(shapes.token_shape, cased) if s],
          settings['shape_ngrams'])
  return out


def _expected(counter, k):
  ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:k]
  return bucket_contents.BucketContent(
      tuple(s for s, _ in ranked), tuple(c for _, c in ranked), len(counter))


def _check(docs, settings, k=3):
  f = text.Featurizer(min_df=1, **settings).fit(docs)
  want = _reference(docs, settings)
  ids = sorted(want) + [i for i in range(min(settings['buckets'], 50))
                        if i not in want]
  got = f.bucket_names(ids, k)
  assert len(got) == len(ids)
  for i, content in zip(ids, got):
    expected = (_expected(want[i], k) if i in want
                else bucket_contents.EMPTY)
    assert content == expected, (i, content, expected)
    assert content.collision == (expected.num_distinct > 1)
  return f


@pytest.mark.parametrize('kind', hashing.HASHES)
@pytest.mark.parametrize('settings', [
    dict(ngrams=2, shape_ngrams=2, buckets=2**20),
    dict(ngrams=2, shape_ngrams=0, buckets=2**20, lowercase=True),
    dict(ngrams=3, shape_ngrams=1, buckets=64),   # many collisions
    dict(ngrams=1, shape_ngrams=3, buckets=7),
    dict(ngrams=2, shape_ngrams=2, buckets=512, tokenizer='tweet'),
    dict(ngrams=2, shape_ngrams=1, buckets=512, tokenizer='whitespace')])
def test_names_counts_and_collisions_match_brute_force(settings, kind):
  _check(DOCS, dict(settings, hash=kind))


def test_chunks_change_nothing(monkeypatch):
  settings = dict(ngrams=2, shape_ngrams=2, buckets=97)
  whole = _check(DOCS * 3, settings, k=5)
  monkeypatch.setattr(hashed_counts, 'CHUNK_CHARS', 40)
  chunked = _check(DOCS * 3, settings, k=5)
  ids = range(97)
  assert whole.bucket_names(ids, 5) == chunked.bucket_names(ids, 5)


def test_k_and_caching():
  f = text.Featurizer(buckets=16, min_df=1).fit(DOCS)
  want = _reference(DOCS, dict(ngrams=2, shape_ngrams=2, buckets=16))
  one = f.bucket_names([3], k=1)[0]
  assert one == _expected(want[3], 1)
  many = f.bucket_names([3, 3, 5], k=6)   # more names: looked up again
  assert many[0] == many[1] == _expected(want[3], 6)
  assert many[2] == _expected(want[5], 6)
  assert f.bucket_names([3], k=1)[0] == one
  with pytest.raises(ValueError, match='outside'):
    f.bucket_names([16])
  with pytest.raises(ValueError, match='k must be'):
    f.bucket_names([1], k=0)


def test_vocabulary_mode_names_its_entries():
  f = text.Featurizer(buckets=0, min_df=1).fit(DOCS)
  got = f.bucket_names([0, 1])
  assert [c.names for c in got] == [(f.feature_name(0),), (f.feature_name(1),)]
  assert all(c.num_distinct == 1 and not c.collision for c in got)


def test_saved_featurizer_keeps_the_buckets_named_before():
  f = text.Featurizer(buckets=64, min_df=1).fit(DOCS)
  named = f.bucket_names([1, 2, 3], k=2)
  d = json.loads(json.dumps(f.to_dict()))
  assert d['named_buckets']['ids'] == [1, 2, 3]
  g = text.Featurizer.from_dict(d)
  assert g.bucket_names([1, 2, 3], k=2) == named
  assert g.bucket_names([4]) == [bucket_contents.EMPTY]   # never named
  assert g.feature_name(4) == '<bucket 4>'


def test_a_model_from_before_format_4_names_every_bucket():
  # Format 3 saved every bucket's names (no counts): as ngram_names wrote
  # them, built here from the FNV-1a featuriser's tokens.
  f = text.Featurizer(buckets=64, min_df=1, hash=hashing.FNV1A,
                      tokenizer='tweet').fit(DOCS)
  toks = f._tokens(DOCS)  # pylint: disable=protected-access
  old = ngram_names.fit_bucket_names(
      toks, 2, lambda n: f._starts(toks, n), 64)  # pylint: disable=protected-access
  d = f.to_dict()
  d['bucket_names'] = ngram_names.bucket_names_to_dict(old)
  del d['settings']['hash']
  g = text.Featurizer.from_dict(json.loads(json.dumps(d)))
  for bucket in range(64):
    name = ngram_names.bucket_name(old, bucket)
    content = g.bucket_names([bucket])[0]
    if name is None:
      assert content == bucket_contents.EMPTY
    else:
      assert ' | '.join(content.names) == name == g.feature_name(bucket)
      assert content.counts == () and content.num_distinct == len(
          content.names)
  again = text.Featurizer.from_dict(json.loads(json.dumps(g.to_dict())))
  assert again.feature_names(range(64)) == g.feature_names(range(64))


def test_real_corpus_against_brute_force():
  path = _data_dir() / 'sms_spam' / 'train.tsv'
  if not path.exists():
    pytest.skip(f'{path} not found (set LINJAX_DATA_DIR)')
  docs = read_corpus(path).texts[:1500]
  settings = dict(ngrams=2, shape_ngrams=2, buckets=2**12)
  f = text.Featurizer(min_df=1, **settings).fit(docs)
  want = _reference(docs, settings)
  ids = sorted(want)[::7]
  for i, content in zip(ids, f.bucket_names(ids, 4)):
    assert content == _expected(want[i], 4), i
