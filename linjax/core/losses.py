"""Softmax, the softmax (cross-entropy) loss and the L2 penalty.

Shapes: N examples, C classes. All functions are pure and work under
`jax.jit`, `jax.grad` and `jax.vmap`.
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


def l2_penalty(params: model.Params, l2: float) -> jax.Array:
  """``l2 * sum(W ** 2)``; the bias is not penalised. Returns a scalar."""
  return l2 * jnp.sum(params.W**2)


def objective(params: model.Params, x: model.Features, y: jax.Array,
              l2: float = 0.0) -> jax.Array:
  """``softmax_loss + l2_penalty``: what training minimises (scalar)."""
  return softmax_loss(params, x, y) + l2_penalty(params, l2)
