"""Per-example gradients: one example's gradient for every example, vmapped.

Shapes: N examples, F features, C classes, L id slots per example.

`per_example_grads` differentiates one example's loss (any loss of the
table of linjax/core/losses.py, softmax by default) and vmaps that over the
batch, so the mean of its result is the batch gradient of the mean loss; `clipped_mean_grad` clips each example's
gradient before averaging (the per-example clipping of DP-SGD). Both hold an
[N, F, C] array: diagnostics for small F, e.g.::

  g = per_example_grads(params, SparseFeatures(ids, weights), y)
  norms = jnp.sqrt(jnp.sum(g.W ** 2, axis=(1, 2)) + jnp.sum(g.b ** 2, 1))
  # which documents pull hardest on the model
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from linjax.core import losses
from linjax.core import model
from linjax.core.features import SparseFeatures


def per_example_grads(params: model.Params, x: SparseFeatures, y,
                      loss='softmax') -> model.Params:
  """Gradients of each example's loss: Params with W [N, F, C], b [N, C].

  ``loss``: a name, ``MODULE:NAME``, function or `losses.Loss`
  (`losses.get_loss`); y int [N] or multi-hot [N, C] as it expects.
  """
  spec = losses.get_loss(loss)

  def one(p, x1, y1):
    return spec(model.example_logits(p, x1), y1)
  return jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(
      params, x, jnp.asarray(y))


def clipped_mean_grad(params: model.Params, x: SparseFeatures, y,
                      clip_norm: float, loss='softmax') -> model.Params:
  """Mean of per-example gradients, each clipped to L2 norm <= clip_norm.

  Returns:
    Params with W [F, C] and b [C].
  """
  g = per_example_grads(params, x, y, loss)
  norms = jnp.sqrt(sum(jnp.sum(t.reshape(t.shape[0], -1) ** 2, axis=1)
                       for t in g))
  factor = jnp.minimum(1.0, clip_norm / jnp.maximum(norms, 1e-12))
  return jax.tree_util.tree_map(
      lambda t: jnp.tensordot(factor, t, axes=1) / t.shape[0], g)
