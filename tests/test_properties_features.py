"""Property tests of hashing and the featurizer (hypothesis).

Invariants that hold for any texts and any settings: permuting the documents
permutes the rows (fitting included), a document's row does not depend on the
other documents it is featurised with, ids lie in [0, F) once per row, and
l2-normalised rows have norm 1; the vectorised hash equals the one-token
reference for any string.
"""

from hypothesis import given, settings, strategies as st
import numpy as np

from linjax.text import featurizer as text
from linjax.text import hashing
from linjax.text import poly_hash
from linjax.text import tokenizer

SETTINGS = settings(max_examples=25, deadline=None)

# Texts: mostly words from a small vocabulary (so n-grams repeat and min_df,
# IDF and the vocabulary see real counts), sometimes arbitrary Unicode.
WORDS = ['flu', 'Flu', 'CDC', 'vaccine', 'shot', 'game', 'goal', '!', ',',
         '#health', '@who', 'ünï', '3', 'x']
_UNICODE = st.characters(blacklist_categories=('Cs',))
TEXTS = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=12).map(' '.join),
    st.text(_UNICODE, max_size=20))
SETTING_VALUES = st.fixed_dictionaries(dict(
    lowercase=st.booleans(),
    tokenizer=st.sampled_from(tokenizer.TOKENIZERS),
    ngrams=st.integers(1, 3),
    buckets=st.sampled_from([0, 1, 7, 64, 2**20]),
    min_count=st.integers(1, 2),
    max_vocab=st.sampled_from([0, 5]),
    min_df=st.integers(1, 2),
    shape_ngrams=st.integers(0, 2),
    weighting=st.sampled_from(['tf', 'binary', 'tfidf', 'sublinear_tfidf']),
    normalize=st.sampled_from(['l2', 'none']),
    hash=st.sampled_from(hashing.HASHES)))


def _dense(x):
  return x.to_dense().astype(np.float64)


def _fit(options, texts):
  """A fitted Featurizer, or None where vocabulary mode finds no n-gram (a
  documented error, as long as it is that one)."""
  try:
    return text.Featurizer(**options).fit(texts)
  except ValueError as e:
    assert options['buckets'] == 0 and 'vocabulary is empty' in str(e), e
    return None


@SETTINGS
@given(texts=st.lists(TEXTS, min_size=1, max_size=10), options=SETTING_VALUES,
       seed=st.integers(0, 2**16))
def test_permuting_documents_permutes_rows(texts, options, seed):
  perm = np.random.default_rng(seed).permutation(len(texts))
  shuffled = [texts[i] for i in perm]
  original, featurizer = _fit(options, texts), _fit(options, shuffled)
  assert (original is None) == (featurizer is None)
  if featurizer is None:
    return
  x = original.transform(texts)
  y = featurizer.transform(shuffled)
  assert y.num_features == x.num_features
  np.testing.assert_allclose(_dense(y), _dense(x)[perm], rtol=1e-5, atol=1e-6)


@SETTINGS
@given(train=st.lists(TEXTS, min_size=1, max_size=8),
       texts=st.lists(TEXTS, min_size=1, max_size=6), options=SETTING_VALUES)
def test_rows_are_independent_and_well_formed(train, texts, options):
  featurizer = _fit(options, train)
  if featurizer is None:
    return
  x = featurizer.transform(texts)
  f = featurizer.num_features
  assert x.num_docs == len(texts) and x.num_features == f
  if options['buckets']:
    assert f == options['buckets']
  assert np.all(np.diff(x.indptr) >= 0) and x.indptr[0] == 0
  assert np.all((x.ids >= 0) & (x.ids < f))
  assert np.all(np.isfinite(x.weights)) and np.all(x.weights >= 0)
  dense = _dense(x)
  for i, t in enumerate(texts):
    row = x.ids[x.indptr[i]:x.indptr[i + 1]]
    assert np.unique(row).size == row.size  # each feature once per row
    # The same row when featurised alone, or twice over.
    alone = featurizer.transform([t, t])
    np.testing.assert_allclose(_dense(alone), dense[[i, i]], rtol=1e-6,
                               atol=1e-7)
  norms = np.linalg.norm(dense, axis=1)
  if options['normalize'] == 'l2':
    nonzero = norms > 0
    np.testing.assert_allclose(norms[nonzero], 1.0, rtol=1e-5)


@settings(max_examples=50, deadline=None)
@given(tokens=st.lists(st.text(_UNICODE, max_size=12), max_size=20))
def test_vectorised_hash_equals_reference(tokens):
  got = hashing.hash_tokens(tokens, hashing.FNV1A)
  assert got.dtype == np.uint32 and got.shape == (len(tokens),)
  assert got.tolist() == [hashing.fnv1a_32(t) for t in tokens]
  got = hashing.hash_tokens(tokens, hashing.POLY64)
  assert got.dtype == np.uint64 and got.shape == (len(tokens),)
  assert got.tolist() == [poly_hash.poly64(t) for t in tokens]
