"""The lecture's search demos and slices of the softmax objective."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import linjax
from linjax.analysis import loss_landscape as landscape


def test_sum_of_squares_by_hand():
  assert float(landscape.sum_of_squares(jnp.array([3.0]))) == 9.0
  assert float(landscape.sum_of_squares(jnp.array([1.0, -2.0]))) == 5.0


def test_gradient_descent_by_hand():
  # w^2 from w0 = 1 with lr 0.25: w <- w - 0.25 * 2w = w / 2.
  trace = landscape.gradient_descent(landscape.sum_of_squares,
                                     jnp.array([1.0]), 0.25, 4)
  np.testing.assert_allclose(trace.points[:, 0], [1.0, 0.5, 0.25, 0.125])
  np.testing.assert_allclose(trace.losses, [1.0, 0.25, 0.0625, 0.015625])


def test_random_search_keeps_running_minimum():
  trace = landscape.random_search(landscape.sum_of_squares,
                                  jax.random.PRNGKey(0), 2, 50, radius=3.0)
  chex.assert_shape(trace.points, (50, 2))
  assert np.all(np.abs(np.asarray(trace.points)) <= 3.0)
  np.testing.assert_allclose(trace.losses,
                             np.sum(np.asarray(trace.points)**2, axis=1),
                             rtol=1e-6)
  np.testing.assert_allclose(trace.best,
                             np.minimum.accumulate(np.asarray(trace.losses)))


@pytest.mark.parametrize('dim', [1, 2])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_gradient_descent_beats_random_search(dim, seed):
  # The lecture's point: for the same number of loss evaluations iterative
  # improvement gets far lower than jumping around.
  out = landscape.compare_search(dim, 30, jax.random.PRNGKey(seed),
                                 learning_rate=0.1)
  assert out['gradient_best'] < out['random_best']
  assert out['gradient_best'] < 1e-4
  chex.assert_shape(out['gradient'].points, (30, dim))


def _problem(seed=0, n=40, f=30, c=4):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.random((n, f)) * (rng.random((n, f)) < 0.2),
                  jnp.float32)
  y = jnp.asarray(rng.integers(0, c, n))
  params = linjax.Params(W=jnp.asarray(rng.normal(size=(f, c)), jnp.float32),
                         b=jnp.asarray(rng.normal(size=c), jnp.float32))
  return params, x, y


def test_filter_normalisation():
  params, _, _ = _problem()
  params = params._replace(W=params.W.at[:, 2].set(0.0).at[5:9].set(0.0))
  d = landscape.filter_normalized_direction(jax.random.PRNGKey(1), params)
  np.testing.assert_allclose(np.linalg.norm(d.W, axis=0),
                             np.linalg.norm(params.W, axis=0), rtol=1e-5)
  np.testing.assert_array_equal(d.W[:, 2], 0.0)
  np.testing.assert_array_equal(d.W[5:9], 0.0)   # features never trained
  assert np.all(np.asarray(d.W[:5, [0, 1, 3]]) != 0)
  np.testing.assert_array_equal(d.b, 0.0)
  full = landscape.filter_normalized_direction(jax.random.PRNGKey(1), params,
                                               skip_zero_rows=False)
  assert np.all(np.asarray(full.W[5:9, 0]) != 0)


@pytest.mark.parametrize('l2', [0.0, 0.01])
def test_slices_equal_objective(l2):
  params, x, y = _problem()
  k1, k2 = jax.random.split(jax.random.PRNGKey(2))
  d1 = landscape.filter_normalized_direction(k1, params)
  d2 = landscape.filter_normalized_direction(k2, params)
  alphas = jnp.array([-1.0, -0.5, 0.0, 0.5, 1.0])
  betas = jnp.array([-0.5, 0.0, 0.25])
  line = landscape.slice_1d(params, x, y, d1, alphas, l2)
  grid = landscape.slice_2d(params, x, y, d1, d2, alphas, betas, l2)
  chex.assert_shape(line, (5,))
  chex.assert_shape(grid, (5, 3))
  at = lambda a, b: linjax.objective(
      jax.tree_util.tree_map(lambda p, u, v: p + a * u + b * v, params, d1, d2),
      x, y, l2)
  # The slice at 0 is the loss at the centre.
  np.testing.assert_allclose(line[2], linjax.objective(params, x, y, l2),
                             rtol=1e-5)
  np.testing.assert_allclose(grid[2, 1], linjax.objective(params, x, y, l2),
                             rtol=1e-5)
  for i, a in enumerate(alphas):
    np.testing.assert_allclose(line[i], at(a, 0.0), rtol=1e-4)
    for j, b in enumerate(betas):
      np.testing.assert_allclose(grid[i, j], at(a, b), rtol=1e-4)


def test_slice_sparse_matches_dense():
  params, x, y = _problem(seed=3, f=12)
  ids = jnp.tile(jnp.arange(12)[None], (x.shape[0], 1))
  sparse = linjax.SparseFeatures(ids.astype(jnp.int32), x)
  d = landscape.filter_normalized_direction(jax.random.PRNGKey(0), params)
  alphas = jnp.linspace(-1, 1, 7)
  np.testing.assert_allclose(landscape.slice_1d(params, sparse, y, d, alphas),
                             landscape.slice_1d(params, x, y, d, alphas),
                             rtol=1e-5)


def test_slices_of_a_margin_loss_are_its_objective():
  """A hinge model's landscape is hinge's: the mean Crammer-Singer loss
  (written here in numpy) plus the L2 penalty, at each perturbed point."""
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  params, x, y = _problem()
  d = landscape.filter_normalized_direction(jax.random.PRNGKey(4), params)
  alphas = jnp.array([-1.0, 0.0, 0.5])
  l2 = 0.01
  line = landscape.slice_1d(params, x, y, d, alphas, l2,
                            losses.get_loss('hinge'))
  for i, a in enumerate(np.asarray(alphas)):
    W = np.asarray(params.W) + a * np.asarray(d.W)
    z = np.asarray(x) @ W + np.asarray(params.b)
    true = z[np.arange(len(y)), np.asarray(y)]
    other = np.where(np.arange(z.shape[1]) == np.asarray(y)[:, None], -np.inf,
                     z)
    hinge = np.maximum(0.0, 1.0 + other.max(axis=1) - true)
    np.testing.assert_allclose(line[i], hinge.mean() + l2 * np.sum(W ** 2),
                               rtol=1e-4)
