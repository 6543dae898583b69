"""The linear model: parameters and class scores.

Shapes: N examples, F features, C classes, L id slots per example.

Column ``W[:, c]`` is class c's template (the lecture's row w_c): the score of
class c is the dot product of the template with the bag-of-words, plus b[c].
"""

from __future__ import annotations

from typing import NamedTuple, Union

import jax
import jax.numpy as jnp

from linjax.core.features import SparseFeatures, check_sparse

Features = Union[jax.Array, SparseFeatures]


class Params(NamedTuple):
  """Linear softmax classifier: W float [F, C], b float [C]."""

  W: jax.Array
  b: jax.Array


def init_params(key: jax.Array, num_features: int, num_classes: int,
                scale: float = 0.0, dtype=jnp.float32) -> Params:
  """Zeros by default; ``scale`` > 0 draws W from N(0, scale^2).

  Args:
    key: a PRNG key (used only when scale > 0).
    num_features: F.
    num_classes: C (at least 2).
    scale: standard deviation of the initial weights.
    dtype: floating dtype of the parameters.

  Returns:
    Params with W [F, C] and b [C] (b is always zero).
  """
  if num_features < 1:
    raise ValueError(f'init_params: num_features must be >= 1, got '
                     f'{num_features}.')
  if num_classes < 2:
    raise ValueError(f'init_params: num_classes must be >= 2, got '
                     f'{num_classes}; a classifier needs two classes.')
  if scale < 0:
    raise ValueError(f'init_params: scale must be >= 0, got {scale}.')
  W = jnp.zeros((num_features, num_classes), dtype)
  if scale > 0:
    W = scale * jax.random.normal(key, (num_features, num_classes), dtype)
  return Params(W=W, b=jnp.zeros((num_classes,), dtype))


def check_params(params: Params) -> None:
  """Raises ValueError unless W is [F, C] and b is [C], floating point."""
  W, b = params
  if jnp.ndim(W) != 2 or jnp.ndim(b) != 1 or jnp.shape(b)[0] != jnp.shape(W)[1]:
    raise ValueError(f'Params needs W [F, C] and b [C]; got W '
                     f'{jnp.shape(W)} and b {jnp.shape(b)}.')
  if not jnp.issubdtype(jnp.result_type(W), jnp.floating):
    raise ValueError(f'Params.W must be floating point, got '
                     f'{jnp.result_type(W)}.')


def check_features(params: Params, x: Features, name: str = 'x') -> None:
  """Raises ValueError unless ``x`` is a batch [N, ...] matching ``params``."""
  num_features = jnp.shape(params.W)[0]
  if isinstance(x, SparseFeatures):
    check_sparse(x, num_features, name)
    if jnp.ndim(x.ids) != 2:
      raise ValueError(f'{name}: expected a batch of SparseFeatures with ids '
                       f'[N, L]; got shape {jnp.shape(x.ids)}.')
    return
  if jnp.ndim(x) != 2:
    raise ValueError(f'{name}: expected a dense batch [N, F]; got rank '
                     f'{jnp.ndim(x)} with shape {jnp.shape(x)}.')
  if jnp.shape(x)[1] != num_features:
    raise ValueError(f'{name}: has {jnp.shape(x)[1]} features but W has '
                     f'{num_features} rows; featurise with F={num_features}.')
  if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
    raise ValueError(f'{name}: dense features must be floating point, got '
                     f'{jnp.result_type(x)}.')


def gather_rows(W: jax.Array, ids: jax.Array) -> jax.Array:
  """Rows ``W[ids]`` ([..., C]); out-of-range ids read NaN, never a wrong row.

  Inside jit the ids cannot be checked eagerly, so an id outside [0, F) poisons
  the scores with NaN (caught by the training loop's divergence check) instead
  of silently reading a clamped row.
  """
  return jnp.asarray(W).at[ids].get(mode='fill', fill_value=jnp.nan)


def example_logits(params: Params, x: Features) -> jax.Array:
  """Scores of ONE example: x dense [F] or SparseFeatures ([L], [L]) -> [C]."""
  if isinstance(x, SparseFeatures):
    return x.weights @ gather_rows(params.W, x.ids) + params.b
  return x @ params.W + params.b


def logits(params: Params, x: Features) -> jax.Array:
  """Class scores ``x @ W + b``.

  Args:
    params: Params with W [F, C], b [C].
    x: dense float [N, F] or SparseFeatures (ids [N, L], weights [N, L]); both
      give the same numbers for the same bag-of-words.

  Returns:
    float [N, C].
  """
  check_params(params)
  check_features(params, x)
  if isinstance(x, SparseFeatures):
    rows = gather_rows(params.W, x.ids)              # [N, L, C]
    return jnp.einsum('nl,nlc->nc', x.weights, rows) + params.b
  return x @ params.W + params.b
