"""Softmax and loss tests against scikit-learn and separate numpy code."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax
from linjax.core import losses


def _numpy_log_softmax(z):
  z = np.asarray(z, np.float64)
  m = z.max(axis=-1, keepdims=True)
  return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


class SoftmaxTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_probabilities_sum_to_one_and_match_numpy(self):
    z = np.random.default_rng(0).normal(size=(7, 5)) * 10
    p = self.variant(linjax.softmax)(jnp.asarray(z, jnp.float32))
    np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p, np.exp(_numpy_log_softmax(z)), rtol=1e-5,
                               atol=1e-7)
    logp = self.variant(linjax.log_softmax)(jnp.asarray(z, jnp.float32))
    np.testing.assert_allclose(logp, _numpy_log_softmax(z), rtol=1e-5,
                               atol=1e-4)

  @chex.variants(with_jit=True, without_jit=True)
  def test_stable_for_huge_scores(self):
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -3.0]])
    p = self.variant(linjax.softmax)(z)
    logp = self.variant(linjax.log_softmax)(z)
    chex.assert_tree_all_finite((p, logp))
    np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(logp[2, :2], [np.log(0.5)] * 2, rtol=1e-6)
    self.assertLess(float(logp[0, 1]), -1.9e4)   # -2e4, not -inf

  def test_loss_and_gradient_finite_for_huge_scores(self):
    params = linjax.Params(W=jnp.array([[1e4, -1e4, 0.0]]),
                           b=jnp.zeros(3))
    x = jnp.array([[1.0], [-1.0]])
    y = jnp.array([1, 1])
    loss = linjax.softmax_loss(params, x, y)
    grads = jax.grad(linjax.softmax_loss)(params, x, y)
    chex.assert_tree_all_finite((loss, grads))
    # Example 0: -log p(1) = 2e4; example 1: class 1 wins, loss ~0.
    np.testing.assert_allclose(loss, 1e4, rtol=1e-6)


class LossTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_softmax_loss_equals_sklearn_log_loss(self):
    sklearn_metrics = pytest.importorskip('sklearn.metrics')
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 6)).astype(np.float32)
    y = rng.integers(0, 4, 30).astype(np.int32)
    y[:4] = [0, 1, 2, 3]
    params = linjax.Params(W=jnp.asarray(rng.normal(size=(6, 4)), jnp.float32),
                           b=jnp.asarray(rng.normal(size=4), jnp.float32))
    loss = self.variant(linjax.softmax_loss)(params, x, y)
    probs = np.exp(_numpy_log_softmax(x @ np.asarray(params.W, np.float64)
                                      + np.asarray(params.b)))
    expected = sklearn_metrics.log_loss(y, probs, labels=[0, 1, 2, 3])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)

  def test_per_example_loss_matches_numpy(self):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    y = np.array([0, 2, 1, 1, 0], np.int32)
    params = linjax.init_params(jax.random.PRNGKey(0), 3, 3, scale=1.0)
    got = linjax.per_example_loss(params, jnp.asarray(x), jnp.asarray(y))
    logp = _numpy_log_softmax(x @ np.asarray(params.W, np.float64))
    np.testing.assert_allclose(got, -logp[np.arange(5), y], rtol=1e-5)

  def test_l2_penalty_and_objective_by_hand(self):
    params = linjax.Params(W=jnp.array([[1.0, -2.0], [0.5, 0.0]]),
                           b=jnp.array([100.0, -100.0]))
    # 0.1 * (1 + 4 + 0.25): the bias is not penalised.
    np.testing.assert_allclose(linjax.l2_penalty(params, 0.1), 0.525,
                               rtol=1e-6)
    x, y = jnp.zeros((1, 2)), jnp.array([0])
    # Scores (100, -100): loss = log(1 + e^-200) ~ 0.
    np.testing.assert_allclose(linjax.objective(params, x, y, 0.1), 0.525,
                               rtol=1e-6)

  def test_uniform_scores_give_log_num_classes(self):
    params = linjax.init_params(jax.random.PRNGKey(0), 4, 5)
    loss = linjax.softmax_loss(params, jnp.ones((3, 4)), jnp.array([0, 4, 2]))
    np.testing.assert_allclose(loss, np.log(5), rtol=1e-6)

  def test_bad_labels(self):
    params = linjax.init_params(jax.random.PRNGKey(0), 2, 3)
    x = jnp.ones((2, 2))
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
      linjax.softmax_loss(params, x, jnp.array([0, 3]))
    with pytest.raises(ValueError, match='integer'):
      linjax.softmax_loss(params, x, jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match='shape'):
      linjax.softmax_loss(params, x, jnp.array([0, 1, 2]))
    # Under jit the range cannot be checked eagerly: the loss is NaN.
    loss = jax.jit(linjax.softmax_loss)(params, x, jnp.array([0, 3]))
    self.assertTrue(np.isnan(float(loss)))


def _numpy_bce_sum(z, Y):
  """Sum over labels of -(Y log s + (1 - Y) log(1 - s)), s = 1/(1+e^-z)."""
  z, Y = np.asarray(z, np.float64), np.asarray(Y, np.float64)
  s = 1.0 / (1.0 + np.exp(-z))
  return -(Y * np.log(s) + (1 - Y) * np.log(1 - s)).sum(-1)


class SigmoidLossTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_sigmoid_loss_equals_sklearn_log_loss_per_label(self):
    """One binary log loss per label (scikit-learn), summed over labels."""
    sklearn_metrics = pytest.importorskip('sklearn.metrics')
    rng = np.random.default_rng(3)
    x = rng.normal(size=(25, 6)).astype(np.float32)
    Y = (rng.uniform(size=(25, 4)) < 0.4).astype(np.int32)
    Y[:2] = [[0, 0, 0, 0], [1, 1, 1, 1]]   # no label, every label
    params = linjax.Params(W=jnp.asarray(rng.normal(size=(6, 4)), jnp.float32),
                           b=jnp.asarray(rng.normal(size=4), jnp.float32))
    loss = self.variant(losses.sigmoid_loss)(params, x, Y)
    z = x @ np.asarray(params.W, np.float64) + np.asarray(params.b)
    s = 1.0 / (1.0 + np.exp(-z))
    expected = sum(sklearn_metrics.log_loss(Y[:, c], s[:, c], labels=[0, 1])
                   for c in range(4))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(loss, _numpy_bce_sum(z, Y).mean(), rtol=1e-5)

  def test_sparse_and_dense_give_the_same_loss(self):
    rng = np.random.default_rng(4)
    ids = jnp.asarray(rng.integers(0, 8, (5, 3)), jnp.int32)
    weights = jnp.asarray(rng.uniform(size=(5, 3)), jnp.float32)
    Y = jnp.asarray(rng.integers(0, 2, (5, 3)))
    params = linjax.init_params(jax.random.PRNGKey(1), 8, 3, scale=1.0)
    sparse = losses.sigmoid_loss(params, linjax.SparseFeatures(ids, weights), Y)
    dense = losses.sigmoid_loss(params, linjax.featurize(ids, weights, 8), Y)
    np.testing.assert_allclose(sparse, dense, rtol=1e-6)

  def test_by_hand_and_through_objective(self):
    """Scores (0, log 3): probabilities (1/2, 3/4); targets (1, 0): loss
    log 2 + log 4 = 3 log 2, plus the L2 penalty 0.1 * (1 + 4)."""
    params = linjax.Params(W=jnp.array([[1.0, -2.0]]),
                           b=jnp.array([0.0, np.log(3.0)]))
    x, Y = jnp.zeros((1, 1)), jnp.array([[1, 0]])
    np.testing.assert_allclose(losses.sigmoid_loss(params, x, Y),
                               3 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(
        losses.objective(params, x, Y, 0.1, loss='sigmoid'),
        3 * np.log(2) + 0.5, rtol=1e-6)
    # The default objective is still the softmax loss of int labels:
    # softmax(0, log 3) = (1/4, 3/4), label 1 costs log(4/3).
    np.testing.assert_allclose(
        losses.objective(params, x, jnp.array([1]), 0.1),
        np.log(4 / 3) + 0.5, rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_stable_for_huge_scores(self):
    """Scores of +-1e4: the loss is 1e4 where the label is wrong, ~0 where
    right, and loss and gradient stay finite (no log(0), no inf - inf)."""
    z = jnp.array([[1e4, -1e4, 1e4, -1e4]])
    Y = jnp.array([[1, 0, 0, 1]])
    bce = self.variant(losses.binary_cross_entropy)(z, Y)
    np.testing.assert_allclose(bce, [[0, 0, 1e4, 1e4]], rtol=1e-6, atol=1e-6)
    params = linjax.Params(W=jnp.zeros((1, 4)), b=z[0])
    grads = jax.grad(losses.sigmoid_loss)(params, jnp.ones((1, 1)), Y)
    chex.assert_tree_all_finite(grads)
    np.testing.assert_allclose(grads.b, [0, 0, 1, -1], atol=1e-6)

  def test_bad_labels(self):
    params = linjax.init_params(jax.random.PRNGKey(0), 2, 3)
    x = jnp.ones((2, 2))
    with pytest.raises(ValueError, match=r'shape \[2, 3\]'):
      losses.sigmoid_loss(params, x, jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r'Y\[1, 2\] = 2'):
      losses.sigmoid_loss(params, x, jnp.array([[0, 1, 1], [1, 0, 2]]))
    with pytest.raises(ValueError, match='sigmoid'):
      losses.objective(params, x, jnp.array([0, 1]), loss='no_such_loss')
