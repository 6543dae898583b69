"""Class templates and per-document explanations."""

import jax.numpy as jnp
import numpy as np
import pytest

import linjax
from linjax.analysis import interpret
from linjax.text import featurizer as text

TEXTS = ['the cat sat on the mat', 'a dog ran to the park!',
         'the dog sat, the cat ran', 'cats and dogs and cats']


def _params(num_features, num_classes=3, seed=0):
  rng = np.random.default_rng(seed)
  return linjax.Params(
      W=rng.normal(size=(num_features, num_classes)).astype(np.float32),
      b=rng.normal(size=num_classes).astype(np.float32))


def test_top_features_vocabulary():
  featurizer = text.Featurizer(ngrams=1, buckets=0, min_df=1, shape_ngrams=0,
                                weighting='tf').fit(TEXTS)
  vocab = featurizer.feature_names(range(featurizer.num_features))
  f = featurizer.num_features
  W = np.zeros((f, 2), np.float32)
  W[vocab.index('cat'), 0] = 3.0
  W[vocab.index('mat'), 0] = 2.0
  W[vocab.index('dog'), 0] = -5.0
  W[vocab.index('park'), 1] = 1.0
  params = linjax.Params(W=W, b=np.zeros(2, np.float32))
  top = interpret.top_features(params, featurizer, ['pets', 'outdoors'], k=3)
  assert top[0] == dict(label='pets', features=[('cat', 3.0), ('mat', 2.0)])
  assert top[1] == dict(label='outdoors', features=[('park', 1.0)])
  bottom = interpret.top_features(params, featurizer, None, k=1,
                                  largest=False)
  assert bottom[0] == dict(label='0', features=[('dog', -5.0)])
  assert 'cat (+3.00)' in interpret.format_top_features(top)


def test_top_features_hashed_names_come_from_training():
  featurizer = text.Featurizer(ngrams=2, buckets=1024).fit(TEXTS)
  params = _params(featurizer.num_features, seed=1)
  top = interpret.top_features(params, featurizer, k=5)
  assert len(top) == 3
  for entry in top:
    weights = [w for _, w in entry['features']]
    assert weights == sorted(weights, reverse=True) and len(weights) == 5
  # The top bucket of class 0 is the true argmax of its column.
  best = int(np.argmax(params.W[:, 0]))
  assert top[0]['features'][0] == (featurizer.feature_name(best),
                                   float(params.W[best, 0]))


@pytest.mark.parametrize('settings', [
    dict(ngrams=2, buckets=1024),
    dict(ngrams=2, buckets=8),                  # many hash collisions
    dict(ngrams=1, buckets=0, weighting='tfidf'),
    dict(ngrams=3, buckets=0, normalize='none', weighting='binary'),
])
def test_contributions_sum_to_logits(settings):
  featurizer = text.Featurizer(**settings).fit(TEXTS)
  params = _params(featurizer.num_features, seed=2)
  for doc in ['the cat sat on the dog, the cat!', 'unknown words only',
              TEXTS[3]]:
    expl = interpret.explain(params, featurizer, doc, ['a', 'b', 'c'])
    csr = featurizer.transform([doc])
    ids, weights = csr.to_padded()
    jparams = linjax.Params(jnp.asarray(params.W), jnp.asarray(params.b))
    want = linjax.logits(jparams, linjax.SparseFeatures(
        jnp.asarray(ids), jnp.asarray(weights)))[0]
    total = sum((it['contributions'] for it in expl.items),
                np.zeros(3)) + expl.bias
    np.testing.assert_allclose(total, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(expl.logits, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(expl.probs.sum(), 1.0, rtol=1e-6)
    for it in expl.items:
      np.testing.assert_allclose(it['contributions'],
                                 it['weight'] * params.W[it['feature_id']],
                                 rtol=1e-6)


def test_explanation_ranks_contributions():
  featurizer = text.Featurizer(ngrams=1, buckets=0, min_df=1, shape_ngrams=0,
                                weighting='tf').fit(TEXTS)
  vocab = featurizer.feature_names(range(featurizer.num_features))
  W = np.zeros((featurizer.num_features, 2), np.float32)
  W[vocab.index('cat'), 1] = 4.0
  W[vocab.index('mat'), 1] = 1.0
  params = linjax.Params(W=W, b=np.array([0.5, 0.0], np.float32))
  expl = interpret.explain(params, featurizer, 'the cat sat on the mat',
                           ['no', 'yes'])
  assert expl.predicted == 1
  assert [it['ngram'] for it in expl.top_items(k=2)] == ['cat', 'mat']
  assert expl.format().startswith('predicted yes')
