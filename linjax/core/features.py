"""Bag-of-words features as pure JAX functions.

Shapes: N examples, L id slots per example, F features.

`SparseFeatures` is the padded sparse layout of the public API: ``ids`` int32
[N, L] and ``weights`` float [N, L], where a padding slot has weight 0 (its id
is irrelevant but must still lie in [0, F)). `featurize` turns it into the dense
[N, F] bag-of-words of the lecture. (Weighting, TF-IDF and normalisation are
the text layer's, on the host: linjax/text/weighting.py.)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class SparseFeatures(NamedTuple):
  """Padded sparse bag-of-words: ids int32 [N, L], weights float [N, L]."""

  ids: jax.Array
  weights: jax.Array


def is_concrete(x) -> bool:
  """True when ``x`` holds values (not a tracer inside jit/grad/vmap)."""
  return not isinstance(x, jax.core.Tracer)


def check_sparse(x: SparseFeatures, num_features: int | None = None,
                 name: str = 'x') -> None:
  """Raises ValueError for a malformed `SparseFeatures`.

  Shape and dtype checks always run; the id range check runs only when the ids
  are concrete (outside jit), since traced values cannot be inspected.
  """
  ids, weights = x
  if jnp.ndim(ids) not in (1, 2) or jnp.shape(ids) != jnp.shape(weights):
    raise ValueError(
        f'{name}: SparseFeatures needs ids and weights of equal shape [N, L] '
        f'(or [L] for one example); got {jnp.shape(ids)} and '
        f'{jnp.shape(weights)}.')
  if not jnp.issubdtype(jnp.result_type(ids), jnp.integer):
    raise ValueError(f'{name}: SparseFeatures.ids must be integers, got '
                     f'{jnp.result_type(ids)}.')
  if not jnp.issubdtype(jnp.result_type(weights), jnp.floating):
    raise ValueError(f'{name}: SparseFeatures.weights must be floating point, '
                     f'got {jnp.result_type(weights)}.')
  if num_features is not None and is_concrete(ids) and jnp.size(ids):
    values = np.asarray(ids)  # numpy: jnp.min would be traced inside jit
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_features:
      raise ValueError(
          f'{name}: feature ids must lie in [0, {num_features}) but range over '
          f'[{lo}, {hi}]; featurise with the same number of features as the '
          f'model (F={num_features}).')


def featurize(ids: jax.Array, weights: jax.Array,
              num_features: int) -> jax.Array:
  """Dense bag-of-words from padded sparse ids.

  Args:
    ids: int [N, L] feature ids in [0, num_features).
    weights: float [N, L] value of each slot; padding slots have weight 0.
    num_features: F, the width of the output.

  Returns:
    float [N, F] with ``out[n] = sum_l weights[n, l] * onehot(ids[n, l])``.
  """
  check_sparse(SparseFeatures(ids, weights), num_features)
  n = jnp.shape(ids)[0]
  rows = jnp.broadcast_to(jnp.arange(n)[:, None], jnp.shape(ids))
  out = jnp.zeros((n, num_features), dtype=jnp.result_type(weights))
  return out.at[rows, ids].add(weights)


def gather_padded_rows(V: jax.Array, ids: jax.Array) -> jax.Array:
  """Rows ``V[ids]``: [F, C], int [...] -> [..., C]; out-of-range ids give 0.

  The engine's read of W (training and scoring), where the id F pads a step:
  it, or any id outside [0, F), reads a row of zeros instead of a clamped
  real row. (`model.gather_rows`, for user-facing scores, reads NaN instead.)
  """
  return V.at[ids].get(mode='fill', fill_value=0)
