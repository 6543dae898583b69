"""Tests of features, Params and logits against independent numpy computations."""

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax


def _random_sparse(rng, n, length, num_features):
  """Padded sparse batch with unique ids per row and some padding slots."""
  ids = np.stack([rng.choice(num_features, length, replace=False)
                  for _ in range(n)]).astype(np.int32)
  weights = rng.uniform(0.5, 2.0, (n, length)).astype(np.float32)
  weights[:, length // 2:] *= rng.uniform(size=(n, length - length // 2)) > 0.5
  return ids, weights


def _dense_reference(ids, weights, num_features):
  out = np.zeros((ids.shape[0], num_features), np.float64)
  for n in range(ids.shape[0]):
    for i, w in zip(ids[n], weights[n]):
      out[n, i] += w
  return out


class FeaturizeTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_featurize_matches_python_loop(self):
    rng = np.random.default_rng(0)
    ids, weights = _random_sparse(rng, 6, 5, 12)
    ids[0, 1] = ids[0, 0]   # a repeated id within a row must add up
    fn = self.variant(lambda i, w: linjax.featurize(i, w, 12))
    got = fn(ids, weights)
    chex.assert_shape(got, (6, 12))
    np.testing.assert_allclose(got, _dense_reference(ids, weights, 12),
                               rtol=1e-6)

  def test_featurize_rejects_out_of_range_ids(self):
    ids = np.array([[0, 12]], np.int32)
    with pytest.raises(ValueError, match=r'\[0, 12\)'):
      linjax.featurize(ids, np.ones((1, 2), np.float32), 12)

  def test_featurize_rejects_float_ids_and_mismatched_shapes(self):
    with pytest.raises(ValueError, match='integers'):
      linjax.featurize(np.zeros((1, 2), np.float32), np.ones((1, 2)), 3)
    with pytest.raises(ValueError, match='equal shape'):
      linjax.featurize(np.zeros((1, 2), np.int32), np.ones((1, 3)), 3)


class LogitsTest(chex.TestCase):

  def test_init_params(self):
    params = linjax.init_params(jax.random.PRNGKey(0), 7, 3)
    chex.assert_shape(params.W, (7, 3))
    chex.assert_shape(params.b, (3,))
    np.testing.assert_array_equal(params.W, 0)
    noisy = linjax.init_params(jax.random.PRNGKey(0), 2000, 3, scale=0.1)
    self.assertAlmostEqual(float(jnp.std(noisy.W)), 0.1, delta=0.01)
    with pytest.raises(ValueError, match='num_classes'):
      linjax.init_params(jax.random.PRNGKey(0), 7, 1)

  @chex.variants(with_jit=True, without_jit=True)
  def test_dense_and_sparse_logits_agree_with_numpy(self):
    rng = np.random.default_rng(2)
    ids, weights = _random_sparse(rng, 8, 6, 20)
    params = linjax.Params(
        W=jnp.asarray(rng.normal(size=(20, 4)), jnp.float32),
        b=jnp.asarray(rng.normal(size=4), jnp.float32))
    dense = _dense_reference(ids, weights, 20)
    expected = dense @ np.asarray(params.W, np.float64) + np.asarray(params.b)
    fn = self.variant(linjax.logits)
    from_dense = fn(params, jnp.asarray(dense, jnp.float32))
    from_sparse = fn(params, linjax.SparseFeatures(ids, weights))
    chex.assert_shape(from_sparse, (8, 4))
    np.testing.assert_allclose(from_dense, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(from_sparse, expected, rtol=1e-5, atol=1e-5)

  def test_numpy_params_work_with_sparse_features(self):
    params = linjax.Params(W=np.arange(6, dtype=np.float32).reshape(3, 2),
                           b=np.zeros(2, np.float32))
    x = linjax.SparseFeatures(np.array([[2, 0]], np.int32),
                              np.array([[1.0, 0.5]], np.float32))
    # 1 * row 2 + 0.5 * row 0 = (4, 5) + (0, 0.5).
    np.testing.assert_allclose(linjax.logits(params, x), [[4.0, 5.5]])

  def test_vmap_of_example_logits_matches_batch(self):
    rng = np.random.default_rng(3)
    ids, weights = _random_sparse(rng, 5, 3, 10)
    params = linjax.init_params(jax.random.PRNGKey(1), 10, 3, scale=1.0)
    x = linjax.SparseFeatures(jnp.asarray(ids), jnp.asarray(weights))
    from linjax.core import model
    per_example = jax.vmap(model.example_logits, in_axes=(None, 0))(params, x)
    np.testing.assert_allclose(per_example, linjax.logits(params, x),
                               rtol=1e-6)

  @parameterized.parameters(
      (np.zeros((3,)), 'rank 1'),
      (np.zeros((2, 5)), '5 features'),
      (np.zeros((2, 4), np.int32), 'floating point'),
  )
  def test_bad_dense_input(self, x, message):
    params = linjax.init_params(jax.random.PRNGKey(0), 4, 3)
    with pytest.raises(ValueError, match=message):
      linjax.logits(params, x)

  def test_sparse_ids_beyond_num_features(self):
    params = linjax.init_params(jax.random.PRNGKey(0), 4, 3)
    x = linjax.SparseFeatures(np.array([[1, 4]], np.int32),
                              np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match=r'F=4'):
      linjax.logits(params, x)
    # Inside jit the check cannot run; the scores become NaN, never a wrong row.
    z = jax.jit(linjax.logits)(params, x)
    self.assertTrue(np.all(np.isnan(np.asarray(z))))

  def test_bad_params(self):
    with pytest.raises(ValueError, match='W \\[F, C\\]'):
      linjax.logits(linjax.Params(jnp.zeros((4, 3)), jnp.zeros(2)),
                    jnp.zeros((1, 4)))
