"""Loss landscapes: the lecture's search demos and slices of the real objective.

Two parts, all pure JAX:

* The lecture's thought experiment on ``w^2`` and ``w1^2 + w2^2``
  (`sum_of_squares`): `random_search` (jump to random points, keep the lowest
  "altitude") against `gradient_descent` (feel the slope, step downhill),
  compared by `compare_search` for the same number of loss evaluations.
* Slices of the objective (a loss of the table, softmax by default, plus
  the L2 penalty) around trained parameters along random
  directions with *filter normalisation* (Li et al., 2018, "Visualizing the
  Loss Landscape of Neural Nets"): each class column ``D[:, c]`` of a random
  Gaussian direction is rescaled to the norm of the template ``W[:, c]``, so
  a step of 1 along the direction is as large as the template itself, class
  by class. The bias direction is zero (Li et al. leave biases unperturbed),
  and so are the rows of features training never saw (W's zero rows).

Slices use that the scores are linear in W: along ``W + a D1 + b D2`` the
logits are ``z0 + a z1 + b z2`` with ``z0 = x W + b``, ``z1 = x D1``, ``z2 =
x D2`` (computed once), and the L2 penalty expands into six inner products.
The grid is then evaluated with `vmap`, at a cost independent of F, and
equals `losses.objective` at each perturbed point (see tests); with another
``loss`` (a `losses.Loss`, e.g. a saved model's), its mean plus the penalty.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from linjax.core import losses
from linjax.core import model


# ----------------------------------------------------------------------------
# The lecture's demos.


def sum_of_squares(w: jax.Array) -> jax.Array:
  """``sum_i w_i^2``: the lecture's w^2 (w [1]) and w1^2 + w2^2 (w [2])."""
  return jnp.sum(jnp.square(w))


class SearchTrace(NamedTuple):
  """One search run of T loss evaluations over a D-dimensional w.

  points: float [T, D] the points evaluated, in order.
  losses: float [T] the loss at each point.
  best: float [T] the lowest loss seen after each evaluation.
  """

  points: jax.Array
  losses: jax.Array
  best: jax.Array


def random_search(fn: Callable[[jax.Array], jax.Array], key: jax.Array,
                  dim: int, num_evals: int, radius: float = 3.0) -> SearchTrace:
  """Random jumps: evaluate ``fn`` at uniform points of [-radius, radius]^D.

  Args:
    fn: scalar loss of a float [D] vector.
    key: PRNG key.
    dim: D.
    num_evals: T, the number of points (= loss evaluations).
    radius: half-width of the box searched.

  Returns:
    A SearchTrace with T evaluations.
  """
  points = jax.random.uniform(key, (num_evals, dim), minval=-radius,
                              maxval=radius)
  values = jax.vmap(fn)(points)
  return SearchTrace(points, values, jax.lax.cummin(values))


def gradient_descent(fn: Callable[[jax.Array], jax.Array], w0: jax.Array,
                     learning_rate: float, num_steps: int) -> SearchTrace:
  """Iterative improvement: ``w <- w - learning_rate * grad fn(w)``.

  Each step costs one loss evaluation (`jax.value_and_grad` gives the loss and
  its gradient in one forward and backward pass), so ``num_steps`` steps are
  compared with ``num_steps`` random points.

  Args:
    fn: scalar loss of a float [D] vector.
    w0: float [D] starting point.
    learning_rate: step size.
    num_steps: T.

  Returns:
    A SearchTrace: points [T, D] are the iterates before each step.
  """
  value_and_grad = jax.value_and_grad(fn)

  def step(w, _):
    value, grad = value_and_grad(w)
    return w - learning_rate * grad, (w, value)

  _, (points, values) = jax.lax.scan(step, jnp.asarray(w0, jnp.float32),
                                     None, length=num_steps)
  return SearchTrace(points, values, jax.lax.cummin(values))


def compare_search(dim: int, num_evals: int, key: jax.Array,
                   learning_rate: float = 0.1, radius: float = 3.0,
                   fn: Callable = sum_of_squares) -> dict:
  """Random search against gradient descent with the same budget.

  Gradient descent starts from a random point of the same box that random
  search samples.

  Args:
    dim: D (1 for the lecture's w^2, 2 for w1^2 + w2^2).
    num_evals: loss evaluations given to each method.
    key: PRNG key.
    learning_rate: gradient descent step size.
    radius: half-width of the box.
    fn: the loss (default `sum_of_squares`).

  Returns:
    dict with ``random`` and ``gradient`` SearchTraces, the best loss each
    reached (``random_best``, ``gradient_best``, floats) and ``num_evals``.
  """
  k_search, k_start = jax.random.split(key)
  rand = random_search(fn, k_search, dim, num_evals, radius)
  w0 = jax.random.uniform(k_start, (dim,), minval=-radius, maxval=radius)
  grad = gradient_descent(fn, w0, learning_rate, num_evals)
  return dict(random=rand, gradient=grad, num_evals=num_evals,
              random_best=float(rand.best[-1]),
              gradient_best=float(grad.best[-1]))


# ----------------------------------------------------------------------------
# Slices of the objective.


def filter_normalized_direction(key: jax.Array, params: model.Params,
                                skip_zero_rows: bool = True) -> model.Params:
  """A Gaussian direction with each class column scaled to ``|W[:, c]|``.

  With hashed features most rows of W are exactly 0 (features never seen in
  training). Spreading a direction's norm over them would leave almost none
  on the rows the data uses, and every slice would look flat; so by default
  the direction is drawn only on the rows where W is non-zero (all rows when
  none is zero).

  Args:
    key: PRNG key.
    params: Params with W [F, C], b [C] (the trained point).
    skip_zero_rows: keep the direction 0 on all-zero rows of W.

  Returns:
    Params with D [F, C], ``|D[:, c]| = |W[:, c]|`` for every class c (a zero
    template gives a zero column), and a zero bias direction [C].
  """
  W = jnp.asarray(params.W)
  d = jax.random.normal(key, W.shape, W.dtype)
  if skip_zero_rows:
    d = jnp.where(jnp.any(W != 0, axis=1, keepdims=True), d, 0.0)
  scale = jnp.linalg.norm(W, axis=0) / jnp.maximum(
      jnp.linalg.norm(d, axis=0), jnp.finfo(W.dtype).tiny)
  return model.Params(W=d * scale, b=jnp.zeros_like(jnp.asarray(params.b)))


def _projections(params, x, directions):
  """Scores of the centre and of each direction: z0 [N, C], zs [K, N, C]."""
  z0 = model.logits(params, x)
  zs = jnp.stack([model.logits(model.Params(d.W, d.b), x) for d in directions])
  return z0, zs


def _gram(params, directions):
  """Inner products <V_i, V_j> of [W, D_1, ..., D_K] (the L2 penalty's)."""
  mats = jnp.stack([jnp.ravel(params.W)] +
                   [jnp.ravel(d.W) for d in directions])    # [K+1, F*C]
  return mats @ mats.T                                      # [K+1, K+1]


def _slice_loss(coeffs, z0, zs, gram, y, l2, loss=None):
  """objective at W + sum_k coeffs[k] D_k, from the precomputed pieces."""
  z = z0 + jnp.tensordot(coeffs, zs, axes=1)
  nll = jnp.mean(losses.nll_from_logits(z, y) if loss is None else
                 loss(z, y))
  c = jnp.concatenate([jnp.ones((1,), coeffs.dtype), coeffs])
  return nll + l2 * c @ gram @ c


def slice_1d(params: model.Params, x: model.Features, y: jax.Array,
             direction: model.Params, alphas: jax.Array,
             l2: float = 0.0, loss=None) -> jax.Array:
  """The objective along ``params + alpha * direction``.

  Args:
    params: Params with W [F, C], b [C] (the centre, e.g. trained params).
    x: dense [N, F] or SparseFeatures ([N, L], [N, L]).
    y: int [N] labels.
    direction: Params like ``params`` (e.g. `filter_normalized_direction`).
    alphas: float [A] step sizes (include 0 for the centre).
    l2: L2 strength of the objective.
    loss: a per-example ``loss(logits [N, C], y) -> [N]`` (a `losses.Loss`,
      whose labels ``y`` are of its kind); None: softmax's.

  Returns:
    float [A]: ``objective(params + alpha * direction, x, y, l2)``.
  """
  z0, zs = _projections(params, x, [direction])
  gram = _gram(params, [direction])
  y = jnp.asarray(y)
  alphas = jnp.asarray(alphas, z0.dtype)
  fn = lambda a: _slice_loss(a[None], z0, zs, gram, y, l2, loss)
  return jax.jit(jax.vmap(fn))(alphas)


def slice_2d(params: model.Params, x: model.Features, y: jax.Array,
             d1: model.Params, d2: model.Params, alphas: jax.Array,
             betas: jax.Array, l2: float = 0.0, loss=None) -> jax.Array:
  """The objective on the plane ``params + alpha * d1 + beta * d2``.

  Args:
    params: Params with W [F, C], b [C].
    x: dense [N, F] or SparseFeatures ([N, L], [N, L]).
    y: int [N] labels.
    d1, d2: directions, Params like ``params``.
    alphas: float [A] coefficients of d1.
    betas: float [B] coefficients of d2.
    l2: L2 strength.
    loss: as in `slice_1d`.

  Returns:
    float [A, B]: entry [i, j] is the objective at
    ``params + alphas[i] d1 + betas[j] d2``.
  """
  z0, zs = _projections(params, x, [d1, d2])
  gram = _gram(params, [d1, d2])
  y = jnp.asarray(y)
  alphas = jnp.asarray(alphas, z0.dtype)
  betas = jnp.asarray(betas, z0.dtype)
  grid = jnp.stack(jnp.meshgrid(alphas, betas, indexing='ij'), axis=-1)
  fn = lambda ab: _slice_loss(ab, z0, zs, gram, y, l2, loss)
  flat = jax.jit(jax.vmap(fn))(grid.reshape(-1, 2))
  return flat.reshape(alphas.shape[0], betas.shape[0])
