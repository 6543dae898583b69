"""Token hashes straight from the text: `hashed_tokens.hash_batch` is exact.

The vectorised path must give, for every document, exactly the hash of each
token of the per-document regex tokenizer (`tokenizer.tokenize`): for
``poly64`` the one-token Python reference `poly_hash.poly64`, for ``fnv1a``
`hashing.fnv1a_32` (the published FNV-1a), and the word shape
(`shapes.token_shape`) of each original-case token: on hand-written edge
cases, on generated Unicode text (hypothesis), and on every shared corpus.
The kernels behind it are checked one by one: the character table against
``str`` over all of Unicode, `shape_ids` against `token_shape`, `hash_spans`
against `fnv1a_32`. The Featurizer gives the same features through it as
through the token-string path, in chunks and on threads.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from linjax.data.corpus import read_corpus
from linjax.text import char_table
from linjax.text import fast_tokenizer as fast
from linjax.text import featurizer
from linjax.text import hashed_counts
from linjax.text import hashed_tokens
from linjax.text import hashing
from linjax.text import poly_hash
from linjax.text import shapes
from linjax.text import tokenizer
from linjax.text import weighting
from linjax.text import worker_pool

URL_PIECES = [
    'http://x.co/a.', 'www.A.com)', 'HTTPS://Y.org/b?c=1,', 'ftp://f', 'wWw.',
    '://', 'xhttp://a.b', 'httpſ://x.y', '(http://a.b/c)', 'a.www.b.c',
    '_www.x.y', 'https://a.b,www.c.d', 'http://a.comwww.b.com', '://www.x.y',
    'é://www.ü.de', 'www.x.com.', 'ftp://;', 'hTtP://', '#www.x.y', '1www.x']

EDGE_DOCS = [
    '', ' ', '\t\r\n\x0b\x0c', 'a', '#', '@', '_', 'a_b-c', '__init__', '3.50',
    "don't", 'Hello, World! #Health @CNN a#b', 'x\x1cy\x1dz\x1e\x1fw',
    'a\x85b\u2028c\u2029d\u3000e\xa0f', 'nul\x00here', '\x00',
    'e\u0301t\u00e9', 'Ünïcödé wörds!', 'İstanbul İİ', 'ΣΑΣ ΌΣΟΣ. ΟΔΟΣ.ΑΒ',
    'ǅungla ﬁne ß STRAßE Straße', '😀😀 a😀b', '\U0001d400x \U0001d400\U0001d401',
    '一二三 四五', '٣٤ ½ ² Ⅻ ⅻ Ⓐⓑ', 'see http://x.co/a. now',
    'www.A.com) b', 'WWW.CAPS.ORG/x?y=1', 'odd a://b', '://', 'wwww.x',
    'a\nb', 'x' * 63, 'X' * 64 + ' ' + 'Xy' * 40, 'é' * 33, 'w' * 300,
    'long ' + 'Q' * 5000 + ' q', 'McCain iPhone H1N1 I a CDC 2014 Flu covid19',
] + URL_PIECES + [' '.join(URL_PIECES), ''.join(URL_PIECES)]

ALPHABET = (
    'abcxyzABCXYZ0189' + '.,;:!?()[]{}<>\'"-/\\&*+=%$~^|`' + ' \t\n\r\x0b\x0c'
    '\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000\x00' + '#@_' +
    'éÉüÜñİıßΣσςǅǆǄﬁ' + '一中文' + '😀🙂\U0001d400' + '\u0301\u0308' + '٣½²Ⅻⓑ')


def _data_dir() -> Path:
  return Path(os.environ.get('LINJAX_DATA_DIR') or
              Path(__file__).resolve().parents[1].parent / 'shared' / 'data')


ONE_TOKEN = {hashing.POLY64: poly_hash.poly64, hashing.FNV1A: hashing.fnv1a_32}
DTYPE = {hashing.POLY64: np.uint64, hashing.FNV1A: np.uint32}


def _reference(docs, lowercase, kind):
  """Per document: hashes of the regex tokens, shape indices of the cased."""
  index = {s: i for i, s in enumerate(shapes.SHAPES)}
  out = []
  for doc in docs:
    words = tokenizer.tokenize(doc, lowercase)
    cased = tokenizer.tokenize(doc, False)
    shaped = [index[s] for s in map(shapes.token_shape, cased) if s]
    out.append(([ONE_TOKEN[kind](t) for t in words], shaped))
  return out


def _split(values, lengths):
  return np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _assert_exact(docs, lowercase, with_shapes=True, kind=hashing.POLY64):
  if kind == hashing.FNV1A and any(
      0xD800 <= ord(c) <= 0xDFFF for doc in docs for c in doc):
    kind = hashing.POLY64  # a lone surrogate has no UTF-8 (tested below)
  got = hashed_tokens.hash_batch(docs, lowercase, with_shapes, kind)
  assert got.hashes.dtype == DTYPE[kind] and got.lengths.shape == (len(docs),)
  want = _reference(docs, lowercase, kind)
  for n, (hashes, shaped) in enumerate(want):
    assert _split(got.hashes, got.lengths)[n].tolist() == hashes, docs[n]
    if with_shapes:
      assert _split(got.shapes, got.shape_lengths)[n].tolist() == shaped, (
          docs[n])
  if not with_shapes:
    assert got.shapes is None and got.shape_lengths is None


@pytest.mark.parametrize('kind', hashing.HASHES)
@pytest.mark.parametrize('lowercase', [True, False])
@pytest.mark.parametrize('with_shapes', [True, False])
def test_edge_cases(lowercase, with_shapes, kind):
  _assert_exact(EDGE_DOCS, lowercase, with_shapes, kind)
  _assert_exact([], lowercase, with_shapes, kind)
  for doc in EDGE_DOCS:  # alone, so each special case is the whole batch.
    _assert_exact([doc], lowercase, with_shapes, kind)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=12),
       st.booleans(), st.sampled_from(hashing.HASHES))
def test_generated_text(docs, lowercase, kind):
  _assert_exact(docs, lowercase, kind=kind)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=6),
                                   st.sampled_from(URL_PIECES)), max_size=8)
                .map(''.join), max_size=10), st.booleans(),
       st.sampled_from(hashing.HASHES))
def test_generated_text_with_urls(docs, lowercase, kind):
  _assert_exact(docs, lowercase, kind=kind)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=8), st.booleans(),
       st.sampled_from(hashing.HASHES))
def test_any_unicode(docs, lowercase, kind):
  _assert_exact(docs, lowercase, kind=kind)


def test_tokens_across_the_hash_blocks():
  # Tokens that cross poly_hash.BLOCK boundaries, some longer than a block.
  block = poly_hash.BLOCK
  docs = ['ab ' * (block // 3) + 'Σx' * block + ' tail',
          'q' * (block - 1) + ' ' + 'Z' * (3 * block + 5) + '. ΣΑΣ',
          'x' * (block + 7)]
  for lowercase in (True, False):
    _assert_exact(docs, lowercase, kind=hashing.POLY64)


@pytest.mark.parametrize('kind', hashing.HASHES)
@pytest.mark.parametrize('corpus',
                         ['healthtweets', 'sms_spam', 'fortunes', 'manpages'])
def test_real_corpora(corpus, kind):
  path = _data_dir() / corpus / 'train.tsv'
  if not path.exists():
    pytest.skip(f'{path} not found (set LINJAX_DATA_DIR)')
  docs = read_corpus(path).texts
  for lowercase in (True, False):
    got = hashed_tokens.hash_batch(docs, lowercase, True, kind)
    # The batch reference: tokenize_batch is itself tested against the regex.
    words = tokenizer.tokenize_batch(docs, lowercase, 'words_punct')
    np.testing.assert_array_equal(got.lengths, words.lengths)
    np.testing.assert_array_equal(
        got.hashes, hashing.hash_tokens(words.strings, kind)[words.tok])
    cased = tokenizer.tokenize_batch(docs, False, 'words_punct')
    index = {s: i for i, s in enumerate(shapes.SHAPES)}
    of_string = np.array([index.get(shapes.token_shape(s), -1)
                          for s in cased.strings], np.int64)
    shape = of_string[cased.tok]
    np.testing.assert_array_equal(got.shapes, shape[shape >= 0])
    doc = np.repeat(np.arange(len(docs)), cased.lengths)
    np.testing.assert_array_equal(
        got.shape_lengths, np.bincount(doc[shape >= 0], minlength=len(docs)))


def test_only_w_lower_cases_to_w():
  # url_hints looks for 'www.' in the lower-cased text.
  assert [c for c in map(chr, range(0x110000)) if 'w' in c.lower()] == [
      'W', 'w']


def test_lone_surrogates_fail_in_fnv1a_as_in_the_token_path():
  # poly64 reads code points: lone surrogates hash (test_any_unicode).
  for doc in ('\ud800', 'a \udfff b'):
    with pytest.raises(UnicodeEncodeError):
      hashing.hash_tokens(tokenizer.tokenize(doc), hashing.FNV1A)
    with pytest.raises(UnicodeEncodeError):
      hashed_tokens.hash_batch(['fine', doc], True, True, hashing.FNV1A)


# -- the kernels ---------------------------------------------------------------


def test_char_table_is_str_over_all_of_unicode():
  points = np.arange(0x110000, dtype=np.uint32)
  props = char_table.properties(points)
  assert props.min() >= char_table.FILLED
  sample = list(range(0, 0x110000, 97)) + list(range(0x3000)) + [
      0x130, 0x3A3, 0x1C5, 0xDF, 0xFB01, 0x2160, 0x24D1]
  for p in sample:
    assert props[p] == char_table.char_properties(chr(p)), hex(p)
  classes = props & char_table.CLASS_BITS
  for p in range(0, 0x110000, 13):
    assert classes[p] == fast.char_class(chr(p)), hex(p)


def test_shape_ids_match_token_shape_on_every_word_character():
  # Each word character alone and after an upper- and a lower-case letter.
  word = [chr(p) for p in range(0x110000)
          if not 0xD800 <= p <= 0xDFFF and (chr(p).isalnum() or p == 95)]
  for prefix in ('', 'A', 'a', 'ǅ'):
    tokens = [prefix + c for c in word]
    text = ' '.join(tokens)
    lengths = np.array([len(t) for t in tokens])
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    got = shapes.shape_ids(char_table.properties(fast.code_points(text)),
                           starts, starts + lengths,
                           lambda a, b, t=text: t[a:b])
    index = {s: i for i, s in enumerate(shapes.SHAPES)}
    want = [index[shapes.token_shape(t)] for t in tokens]
    bad = np.flatnonzero(got != np.array(want))
    assert not bad.size, [tokens[i] for i in bad[:5]]


def test_poly_hash_matches_its_reference():
  tokens = ['', 'a', 'foobar', 'ünïcödé', '😀', '\x00', '\x00\x00', 'ab', 'ba',
            '\ud800', 'x' * 63, 'y' * (poly_hash.BLOCK + 3), 'z' * 70000]
  got = hashing.hash_tokens(tokens, hashing.POLY64)
  assert got.dtype == np.uint64
  assert got.tolist() == [poly_hash.poly64(t) for t in tokens]
  assert len(set(got.tolist())) == len(tokens)
  # The reference is the formula of the module docstring.
  t = 'héllo'
  total = sum(ord(c) * pow(poly_hash.P, i, 2**64) for i, c in enumerate(t))
  assert poly_hash.poly64(t) == poly_hash.fmix64(
      (total + len(t) * poly_hash.LENGTH_MIX) % 2**64)
  # The vectorised finaliser is the scalar one, on values over all 64 bits.
  values = np.random.default_rng(0).integers(0, 2**64, 1000, np.uint64,
                                              endpoint=False)
  assert poly_hash.finalize(values.copy()).tolist() == [
      poly_hash.fmix64(v) for v in values.tolist()]


def test_lower_case_table_is_str_lower_over_all_of_unicode():
  points = np.arange(0x110000, dtype=np.uint32)
  char_table.properties(points)
  low = char_table.lower_case(points)
  for p in range(0x110000):
    if 0xD800 <= p <= 0xDFFF:
      continue
    lowered = chr(p).lower()
    assert low[p] == (ord(lowered) if len(lowered) == 1 else p), hex(p)


def test_hash_spans_matches_fnv1a():
  tokens = ['', 'a', 'foobar', 'ünïcödé', '😀', 'x' * 63, 'y' * 64, 'z' * 65,
            'w' * 1000, 'ab', 'ba']
  data = np.frombuffer(b'-'.join(t.encode() for t in tokens), np.uint8)
  lengths = np.array([len(t.encode()) for t in tokens])
  starts = np.cumsum(lengths + 1) - (lengths + 1)
  np.testing.assert_array_equal(
      hashing.hash_spans(data, starts, lengths),
      [hashing.fnv1a_32(t) for t in tokens])


# -- the Featurizer through it -------------------------------------------------

TEXTS = EDGE_DOCS + ['The cat sat on the MAT. The Cat!', 'Flu season: CDC',
                     'Read more at https://example.com/flu?id=3 now.']


@pytest.mark.parametrize('settings_', [
    dict(), dict(lowercase=False), dict(shape_ngrams=0, ngrams=3),
    dict(buckets=1000, shape_ngrams=3, ngrams=1, weighting='tf', min_df=1),
    dict(buckets=7, normalize='none', weighting='binary'),
    dict(buckets=2**30 + 3, weighting='tf', min_df=1)])  # 64-bit keys
def test_featurizer_matches_the_token_path(monkeypatch, settings_):
  direct = featurizer.Featurizer(**settings_)
  assert direct._hashes_directly  # pylint: disable=protected-access
  x = direct.fit_transform(TEXTS)
  y = direct.transform(TEXTS[::-1])
  monkeypatch.setattr(featurizer.Featurizer, '_hashes_directly', False)
  tokens = featurizer.Featurizer(**settings_)
  for u, v in zip(x[:3], tokens.fit_transform(TEXTS)[:3]):
    np.testing.assert_array_equal(u, v)
    assert u.dtype == v.dtype
  for u, v in zip(y[:3], tokens.transform(TEXTS[::-1])[:3]):
    np.testing.assert_array_equal(u, v)
  ids = np.unique(x.ids)
  assert direct.feature_names(ids) == tokens.feature_names(ids)


@pytest.mark.parametrize('threads', [1, 3])
def test_chunks_and_threads_change_nothing(monkeypatch, threads):
  docs = TEXTS * 5
  whole = featurizer.Featurizer().fit_transform(docs)
  monkeypatch.setattr(hashed_counts, 'CHUNK_CHARS', 50)
  monkeypatch.setattr(worker_pool, 'THREADS', threads)
  chunked = featurizer.Featurizer().fit_transform(docs)
  for u, v in zip(whole[:3], chunked[:3]):
    np.testing.assert_array_equal(u, v)


def test_weighing_in_blocks_changes_nothing(monkeypatch):
  f = featurizer.Featurizer()
  whole = f.fit_transform(TEXTS * 3)
  monkeypatch.setattr(weighting, '_BLOCK_ENTRIES', 7)
  for u, v in zip(whole[:3], f.transform(TEXTS * 3)[:3]):
    np.testing.assert_array_equal(u, v)


def test_threads_from_the_environment():
  code = 'from linjax.text import worker_pool; print(worker_pool.THREADS)'
  run = lambda value: subprocess.run(
      [sys.executable, '-c', code], capture_output=True, text=True,
      env=dict(os.environ, LINJAX_TEXT_THREADS=value), check=False)
  assert run('3').stdout.strip() == '3'
  failed = run('0')
  assert failed.returncode != 0
  assert 'LINJAX_TEXT_THREADS must be a positive integer' in failed.stderr
