"""Softmax, the two data losses and the L2 penalty.

Shapes: N examples, C classes. All functions are pure and work under
`jax.jit`, `jax.grad` and `jax.vmap`.

* ``softmax`` (one class per document): `softmax_loss`, the mean of
  ``-log softmax(z_i)[y_i]`` with int labels y [N].
* ``sigmoid`` (multi-label, a one-vs-rest binary logistic regression per
  label, fastText's ``-loss ova``): `sigmoid_loss`, the mean over documents
  of the sum over labels of the binary cross-entropy of ``sigmoid(z_ic)``
  against a multi-hot Y [N, C] in {0, 1}. A document may have several labels
  or none. The training step takes the per-document loss and its score
  gradient together from `sigmoid_nll_and_score_grad` (one exp).

`objective(params, x, y, l2, loss=...)` adds the L2 penalty to either.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import model
from linjax.core.features import is_concrete


def log_softmax(z: jax.Array) -> jax.Array:
  """``z - logsumexp(z)`` along the last axis.

  Subtracting the maximum first keeps every exponent <= 0, so any finite
  scores (e.g. +-1e4) give finite log-probabilities and gradients.

  Args:
    z: float [..., C] scores.

  Returns:
    float [..., C] log-probabilities.
  """
  shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
  return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=-1, keepdims=True))


def softmax(z: jax.Array) -> jax.Array:
  """Probabilities along the last axis (float [..., C], rows sum to 1)."""
  shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
  e = jnp.exp(shifted)
  return e / jnp.sum(e, axis=-1, keepdims=True)


def check_labels(y: jax.Array, num_examples: int, num_classes: int) -> None:
  """Raises ValueError unless y is int [N] with values in [0, C) (if concrete)."""
  if jnp.ndim(y) != 1 or jnp.shape(y)[0] != num_examples:
    raise ValueError(f'y: expected int labels of shape [{num_examples}], got '
                     f'shape {jnp.shape(y)}.')
  if not jnp.issubdtype(jnp.result_type(y), jnp.integer):
    raise ValueError(f'y: labels must be integer class ids, got dtype '
                     f'{jnp.result_type(y)}; encode label names with a '
                     f'LabelMap first.')
  if is_concrete(y) and jnp.size(y):
    values = np.asarray(y)  # numpy: jnp.min would be traced inside jit
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
      raise ValueError(f'y: labels must lie in [0, {num_classes}) but range '
                       f'over [{lo}, {hi}].')


def nll_from_logits(z: jax.Array, y: jax.Array) -> jax.Array:
  """``-log softmax(z)[y]`` for scores z [..., C] and int labels y [...].

  A label outside [0, C) gives NaN (not a silent 0), so a bad label inside
  jit surfaces through the divergence check.
  """
  num_classes = z.shape[-1]
  logp = log_softmax(z)
  picked = jnp.take_along_axis(
      logp, jnp.clip(y, 0, num_classes - 1)[..., None], axis=-1)[..., 0]
  valid = (y >= 0) & (y < num_classes)
  return jnp.where(valid, -picked, jnp.nan)


def example_loss(params: model.Params, x: model.Features,
                 y: jax.Array) -> jax.Array:
  """Loss of ONE example: x dense [F] or SparseFeatures ([L], [L]), y int []."""
  return nll_from_logits(model.example_logits(params, x), y)


per_example_loss = jax.vmap(example_loss, in_axes=(None, 0, 0))
per_example_loss.__doc__ = """float [N]: `example_loss` vmapped over a batch."""


def softmax_loss(params: model.Params, x: model.Features,
                 y: jax.Array) -> jax.Array:
  """Mean over examples of ``-log p(y_i | x_i)``.

  Args:
    params: Params with W [F, C], b [C].
    x: dense float [N, F] or SparseFeatures ([N, L], [N, L]).
    y: int [N] class ids in [0, C).

  Returns:
    float scalar.
  """
  z = model.logits(params, x)
  check_labels(y, z.shape[0], z.shape[1])
  return jnp.mean(nll_from_logits(z, y))


def check_multi_hot(Y: jax.Array, num_examples: int,
                    num_classes: int) -> None:
  """Raises ValueError unless Y is [N, C] with values in {0, 1} (if concrete)."""
  if jnp.ndim(Y) != 2 or tuple(jnp.shape(Y)) != (num_examples, num_classes):
    raise ValueError(f'Y: expected multi-hot labels of shape [{num_examples}, '
                     f'{num_classes}] (one column per label), got shape '
                     f'{jnp.shape(Y)}.')
  if is_concrete(Y) and jnp.size(Y):
    values = np.asarray(Y)
    bad = (values != 0) & (values != 1)
    if bad.any():
      n, c = np.argwhere(bad)[0]
      raise ValueError(f'Y: multi-hot labels must be 0 or 1; Y[{n}, {c}] = '
                       f'{values[n, c]}.')


def binary_cross_entropy(z: jax.Array, Y: jax.Array) -> jax.Array:
  """``-(Y log sigmoid(z) + (1 - Y) log sigmoid(-z))``, elementwise.

  Written with `jax.nn.log_sigmoid` (``-softplus(-z)``), so any finite score
  (e.g. +-1e4) gives a finite loss and the gradient ``sigmoid(z) - Y``.

  Args:
    z: float [..., C] scores.
    Y: [..., C] targets in {0, 1} (any numeric dtype).

  Returns:
    float [..., C].
  """
  Y = jnp.asarray(Y, z.dtype)
  return -(Y * jax.nn.log_sigmoid(z) + (1.0 - Y) * jax.nn.log_sigmoid(-z))


def sigmoid_nll_from_logits(z: jax.Array, Y: jax.Array) -> jax.Array:
  """Per-example multi-label loss: float [...], the sum over the C labels."""
  return jnp.sum(binary_cross_entropy(z, Y), axis=-1)


def sigmoid_nll_and_score_grad(z: jax.Array, Y: jax.Array):
  """`sigmoid_nll_from_logits` and its gradient w.r.t. z, sharing one exp.

  ``BCE = max(z, 0) - Y z + log1p(e)`` and ``sigmoid(z) = 1 / (1 + e)``
  (z >= 0) or ``e / (1 + e)`` (z < 0), with ``e = exp(-|z|)`` in (0, 1]:
  stable for any finite score, and one exp and one log1p where
  `binary_cross_entropy` plus `jax.nn.sigmoid` take three transcendental
  groups. The training step uses it: its XLA program compiles in ~20 % less
  CPU time (debian_tags' 69 labels: 1.24 -> 0.97 s).

  Args:
    z: float [..., C] scores.
    Y: [..., C] targets in {0, 1} (any numeric dtype).

  Returns:
    (NLL float [...], the sum over labels; dNLL/dz = sigmoid(z) - Y,
    float [..., C]).
  """
  Y = jnp.asarray(Y, z.dtype)
  e = jnp.exp(-jnp.abs(z))
  nll = jnp.sum(jnp.maximum(z, 0.0) - Y * z + jnp.log1p(e), axis=-1)
  p = jnp.where(z >= 0, 1.0, e) / (1.0 + e)
  return nll, p - Y


def sigmoid_loss(params: model.Params, x: model.Features,
                 Y: jax.Array) -> jax.Array:
  """Mean over examples of the sum over labels of the binary cross-entropy.

  Each label c is its own binary logistic regression with probability
  ``sigmoid(x_i W[:, c] + b[c])``; its gradient w.r.t. the scores is
  ``sigmoid(z) - Y`` (see `gradients.manual_grad`).

  Args:
    params: Params with W [F, C], b [C].
    x: dense float [N, F] or SparseFeatures ([N, L], [N, L]).
    Y: multi-hot [N, C] in {0, 1}: ``Y[i, c] = 1`` if example i has label c.

  Returns:
    float scalar.
  """
  z = model.logits(params, x)
  check_multi_hot(Y, z.shape[0], z.shape[1])
  return jnp.mean(sigmoid_nll_from_logits(z, Y))


LOSSES = ('softmax', 'sigmoid')


def data_loss(params: model.Params, x: model.Features, y: jax.Array,
              loss: str = 'softmax') -> jax.Array:
  """`softmax_loss` (y int [N]) or `sigmoid_loss` (y multi-hot [N, C])."""
  if loss == 'softmax':
    return softmax_loss(params, x, y)
  if loss == 'sigmoid':
    return sigmoid_loss(params, x, y)
  raise ValueError(f'loss must be one of {LOSSES}, got {loss!r}.')


def l2_penalty(params: model.Params, l2: float) -> jax.Array:
  """``l2 * sum(W ** 2)``; the bias is not penalised. Returns a scalar."""
  return l2 * jnp.sum(params.W**2)


def objective(params: model.Params, x: model.Features, y: jax.Array,
              l2: float = 0.0, loss: str = 'softmax') -> jax.Array:
  """``data loss + l2_penalty``: what training minimises (scalar).

  ``loss`` 'softmax' (default): `softmax_loss`, y int [N]; 'sigmoid':
  `sigmoid_loss`, y multi-hot [N, C].
  """
  return data_loss(params, x, y, loss) + l2_penalty(params, l2)
