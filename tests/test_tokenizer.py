"""Batch tokenizer: the vectorised path against the per-document regex path.

`tokenizer.tokenize_batch` must give exactly what `_tokenize_batch_regex`
gives (token strings in order of first occurrence, flat token indices and
tokens per document) on hand-written edge cases, random strings over a rich
alphabet and every corpus under shared/data; the character classes behind it
must be Python ``re``'s over all of Unicode.
"""

from __future__ import annotations

import os
from pathlib import Path
import re

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from linjax.text import fast_tokenizer as fast
from linjax.text import tokenizer

FAST_KINDS = ('words_punct', 'tweet')

EDGE_DOCS = [
    '', ' ', '\t\r\n\x0b\x0c', 'a', '#', '@', '_', '#_', '@@x', '##b', 'a#b',
    '#a#b', 'x #', '# x', '#\u0301a', 'a_b-c', '__init__', '3.50', "don't",
    'Hello, World! #Health @CNN a#b @x_y #1 ## #', 'x\x1cy\x1dz\x1e\x1fw',
    'a\x85b\u2028c\u2029d\u3000e\xa0f', 'nul\x00here', '\x00', 'e\u0301t\u00e9',
    'Ünïcödé wörds!', 'İstanbul İİ', 'ΣΑΣ ΌΣΟΣ', 'ǅungla ﬁne ß', '😀😀 a😀b',
    '#😀 @\U0001d400x \U0001d400\U0001d401', '一二三 四五', '٣٤ ½ ² Ⅻ',
    '\ud800 lone \udfff', 'see http://x.co/a. now', 'www.A.com) b',
    'WWW.CAPS.ORG/x?y=1', 'Www.Mixed.com', 'www.', 'odd a://b', '://',
    'wwww.x', 'ww.w', 'a\nb', 'x' * 7, 'x' * 8, 'x' * 9, 'y' * 16, 'y' * 17,
    'z' * 256, 'z' * 257, 'w' * 300, 'long ' + 'q' * 5000 + ' q',
    'abcdefgh abcdefghi abcdefgh abcdefghij abcdefghi',
]

ALPHABET = (
    'abcxyzABCXYZ0189' + '.,;:!?()[]{}<>\'"-/\\&*+=%$~^|`' + ' \t\n\r\x0b\x0c'
    '\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000\x00' + '#@_' +
    'éÉüÜñİıßΣσς' + '一中文' + '😀🙂\U0001d400' + '\u0301\u0308' + '٣½²')
URL_PIECES = ['http://x.co/a.', 'www.A.com)', 'HTTPS://Y.org/b?c=1,',
              'ftp://f', 'wWw.', '://']


@pytest.fixture(autouse=True)
def _fast_path_for_small_batches(monkeypatch):
  # The vectorised path leaves batches under _FAST_MIN_CHARS to the regex
  # path; here it takes every batch (test_small_batches_take_regex aside).
  monkeypatch.setattr(tokenizer, '_FAST_MIN_CHARS', 0)


def _data_dir() -> Path:
  return Path(os.environ.get('LINJAX_DATA_DIR') or
              Path(__file__).resolve().parents[1].parent / 'shared' / 'data')


def _read_texts(path: Path) -> list[str]:
  lines = path.read_text(encoding='utf-8').split('\n')[1:]
  return [line.partition('\t')[2] for line in lines if line]


def _assert_same(docs, lowercase, kind, per_doc=True):
  got = tokenizer.tokenize_batch(docs, lowercase, kind)
  want = tokenizer._tokenize_batch_regex(docs, lowercase, kind)
  if kind in FAST_KINDS and tokenizer._FAST_MIN_CHARS == 0:
    # The vectorised path itself, not a fallback to the regex path.
    texts = [d.lower() for d in docs] if lowercase else list(docs)
    direct = tokenizer._tokenize_batch_fast(texts, kind)
    assert direct is not None
    assert direct.strings == got.strings
    np.testing.assert_array_equal(direct.tok, got.tok)
  assert got.strings == want.strings
  for name in ('tok', 'lengths'):
    a, b = getattr(got, name), getattr(want, name)
    assert a.dtype == np.int64 and b.dtype == np.int64, name
    np.testing.assert_array_equal(a, b, err_msg=name)
  assert got.hashes is None
  if not per_doc:
    return
  # Tokens.strings[tok], split by lengths, is each document's tokenize().
  flat = [got.strings[i] for i in got.tok.tolist()]
  ends = np.cumsum(got.lengths).tolist()
  for doc, start, end in zip(docs, [0] + ends, ends):
    assert flat[start:end] == tokenizer.tokenize(doc, lowercase, kind)


# -- character classes -------------------------------------------------------


def test_char_classes_match_re_over_all_of_unicode():
  everything = ''.join(map(chr, range(0x110000)))  # surrogates included.
  word = np.zeros(0x110000, bool)
  word[[m.start() for m in re.finditer(r'\w', everything)]] = True
  space = np.zeros(0x110000, bool)
  space[[m.start() for m in re.finditer(r'\s', everything)]] = True
  other = np.zeros(0x110000, bool)
  other[[m.start() for m in re.finditer(r'[^\w\s]', everything)]] = True
  classes = np.array([fast.char_class(c) for c in everything])
  np.testing.assert_array_equal(classes == fast.WORD, word)
  np.testing.assert_array_equal(classes == fast.SPACE, space)
  np.testing.assert_array_equal(classes >= fast.OTHER, other)
  assert ''.join(everything[i] for i in np.flatnonzero(classes == fast.TAG)) \
      == '#@'
  # url_hint_docs assumes that ignoring case only 'w' and 'W' match 'w' and
  # nothing else matches ':', '/' or '.'.
  for char, same in (('w', 'Ww'), (':', ':'), ('/', '/'), (r'\.', '.')):
    found = re.findall(char, everything, re.IGNORECASE)
    assert ''.join(found) == same, char


def test_classify_ranks_and_windows():
  text = 'ab a\U0001f600\u4e00' + ''.join(map(chr, range(0x4e00, 0x4f40)))
  points = fast.code_points(text)
  classes, ranks, k = fast.classify(points)
  np.testing.assert_array_equal(
      classes, [fast.char_class(c) for c in text])
  assert ranks.shape[0] == len(text) + k and not ranks[len(text):].any()
  body = ranks[:len(text)].astype(np.int64)
  assert body.min() > 0
  # Equal code points, equal ranks, and only those.
  assert len(set(zip(points.tolist(), body.tolist()))) == len(set(text))
  assert len(set(body.tolist())) == len(set(text))
  words = fast.windows(ranks, k)
  bits = 64 // k
  for p in (0, 1, len(text) - 1):
    expect = sum(int(r) << (bits * j) for j, r in enumerate(ranks[p:p + k]))
    assert int(words[p]) == expect


# -- tokenisation against the regex path --------------------------------------


def test_hand_worked_example():
  docs = ['Hi, #flu hi!', '', '@CDC: #flu a#b http://t.co/x.', 'HI #']
  got = tokenizer.tokenize_batch(docs, True, 'tweet')
  assert got.strings == ['hi', ',', '#flu', '!', '@cdc', ':', 'a', '#', 'b',
                         '<url>', '.']
  np.testing.assert_array_equal(got.tok, [0, 1, 2, 0, 3,
                                          4, 5, 2, 6, 7, 8, 9, 10,
                                          0, 7])
  np.testing.assert_array_equal(got.lengths, [5, 0, 8, 2])
  got = tokenizer.tokenize_batch(docs, False, 'words_punct')
  assert got.strings == ['Hi', ',', '#', 'flu', 'hi', '!', '@', 'CDC', ':',
                         'a', 'b', '<url>', '.', 'HI']
  np.testing.assert_array_equal(got.tok, [0, 1, 2, 3, 4, 5,
                                          6, 7, 8, 2, 3, 9, 2, 10, 11, 12,
                                          13, 2])
  np.testing.assert_array_equal(got.lengths, [6, 0, 10, 2])


@pytest.mark.parametrize('lowercase', [True, False])
@pytest.mark.parametrize('kind', FAST_KINDS)
def test_edge_cases_match_regex(kind, lowercase):
  _assert_same(EDGE_DOCS, lowercase, kind)
  for doc in EDGE_DOCS:
    _assert_same([doc], lowercase, kind)
    _assert_same([doc, doc, ''], lowercase, kind)
  _assert_same([], lowercase, kind)
  _assert_same(['', '', ''], lowercase, kind)
  _assert_same(['  ', '\n\n'], lowercase, kind)
  _assert_same(['only www.x.y', 'http://a.b'], lowercase, kind)


@pytest.mark.parametrize('kind', tokenizer.TOKENIZERS)
def test_other_kinds_unchanged(kind):
  _assert_same(EDGE_DOCS, True, kind)


@pytest.mark.parametrize('distinct', [300, 70_000])
def test_many_distinct_characters(distinct):
  # More than 255 (then 65535) distinct code points: 16-bit, then 32-bit
  # ranks, 4 (then 2) to a word.
  chars = ''.join(map(chr, range(0x4e00, 0x4e00 + min(distinct, 20000))))
  chars += ''.join(map(chr, range(0x20000, 0x20000 + distinct - len(chars))))
  docs = [chars[i:i + 37] + ' ' + chars[i:i + 5] for i in
          range(0, len(chars), 31)] + EDGE_DOCS
  for kind in FAST_KINDS:
    _assert_same(docs, True, kind)


_DOCS = st.lists(
    st.lists(st.one_of(st.text(ALPHABET, max_size=12),
                       st.sampled_from(URL_PIECES)), max_size=6).map(''.join),
    max_size=8)


@settings(max_examples=150, deadline=None)
@given(docs=_DOCS, lowercase=st.booleans(), kind=st.sampled_from(FAST_KINDS))
def test_random_strings_match_regex(docs, lowercase, kind):
  _assert_same(docs, lowercase, kind)


@pytest.mark.parametrize('seed', [0, 1])
def test_random_corpus_matches_regex(seed):
  # Many documents at once, so tokens repeat and the hash table is busy.
  rng = np.random.default_rng(seed)
  chars = np.array(list(ALPHABET + 'aaeeiioouu    '))
  docs = []
  for _ in range(3000):
    doc = ''.join(rng.choice(chars, rng.integers(0, 40)))
    if rng.random() < 0.02:
      doc += ' ' + str(rng.choice(URL_PIECES))
    docs.append(doc)
  for kind in FAST_KINDS:
    _assert_same(docs, bool(seed), kind)


@pytest.mark.parametrize('corpus', ['healthtweets', 'sms_spam', 'fortunes'])
def test_real_corpora_match_regex(corpus):
  path = _data_dir() / corpus / 'train.tsv'
  if not path.exists():
    pytest.skip(f'{path} not found (set LINJAX_DATA_DIR)')
  docs = _read_texts(path)
  for kind in FAST_KINDS:
    for lowercase in (True, False):
      _assert_same(docs, lowercase, kind, per_doc=False)


# -- exact grouping and fallbacks ---------------------------------------------


def _first_reference(*keys):
  seen = {}
  return np.array([seen.setdefault(row, i)
                   for i, row in enumerate(zip(*map(np.ndarray.tolist, keys)))],
                  np.int64)


@pytest.mark.parametrize('columns', [1, 2, 3])
def test_first_positions_matches_dict(columns):
  rng = np.random.default_rng(columns)
  keys = [rng.integers(0, 5, 4000).astype(np.uint64) << np.uint64(61)
          for _ in range(columns)]
  keys[0] |= rng.integers(0, 50, 4000).astype(np.uint64)
  np.testing.assert_array_equal(fast.first_positions(*keys),
                                _first_reference(*keys))
  assert fast.first_positions(np.zeros(0, np.uint64)).shape == (0,)


def test_colliding_slots_still_exact(monkeypatch):
  # Every row in one slot: each round settles one row's copies, the sort
  # settles the rest.
  monkeypatch.setattr(fast, '_mix',
                      lambda keys: np.zeros(keys[0].shape[0], np.uint64))
  rng = np.random.default_rng(0)
  keys = [rng.integers(0, 30, 2000), rng.integers(0, 3, 2000)]
  np.testing.assert_array_equal(fast.first_positions(*keys),
                                _first_reference(*keys))
  for kind in FAST_KINDS:
    _assert_same(EDGE_DOCS, True, kind)


def test_failed_check_falls_back_to_regex(monkeypatch):
  # If equal tokens were not grouped, the final check sends the batch down
  # the regex path, which gives the right answer.
  monkeypatch.setattr(tokenizer, '_first_occurrences',
                      lambda words, k, starts, ends, string:
                      np.arange(starts.shape[0]))
  calls = []
  regex = tokenizer._tokenize_batch_regex
  monkeypatch.setattr(tokenizer, '_tokenize_batch_regex',
                      lambda *a: calls.append(a) or regex(*a))
  docs = ['a a b', 'b #c', 'http://x.y a']
  for kind in FAST_KINDS:
    got = tokenizer.tokenize_batch(docs, True, kind)
    want = regex(docs, True, kind)
    assert got.strings == want.strings
    np.testing.assert_array_equal(got.tok, want.tok)
    np.testing.assert_array_equal(got.lengths, want.lengths)
  assert len(calls) == 2


def test_small_batches_take_regex(monkeypatch):
  monkeypatch.setattr(tokenizer, '_FAST_MIN_CHARS', 8192)
  calls = []
  monkeypatch.setattr(fast, 'classify', lambda *a: calls.append(a))
  docs = ['a b', '#c d']
  for kind in FAST_KINDS:
    _assert_same(docs, True, kind)
  assert not calls


def test_hint_docs_match_regex():
  rng = np.random.default_rng(0)
  pieces = np.array(list('wW.:/ ax\n') + ['www.', '://', 'WwW.', 'wWw'])
  for _ in range(300):
    docs = [''.join(rng.choice(pieces, rng.integers(0, 12)))
            for _ in range(rng.integers(1, 6))]
    joined = '\n'.join(docs)
    lengths = np.array([len(d) + 1 for d in docs])
    got = tokenizer.url_hint_docs(joined, np.cumsum(lengths) - lengths)
    assert got.tolist() == tokenizer._url_docs(docs, joined)
