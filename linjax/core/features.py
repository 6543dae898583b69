"""Bag-of-words features as pure JAX functions.

Shapes: N examples, L id slots per example, F features.

`SparseFeatures` is the padded sparse layout of the public API: ``ids`` int32
[N, L] and ``weights`` float [N, L], where a padding slot has weight 0 (its id
is irrelevant but must still lie in [0, F)). `featurize` turns it into the dense
[N, F] bag-of-words of the lecture. The weighting functions (term frequency,
binary, TF-IDF, L2 normalisation) act on `SparseFeatures` and assume each
example lists a feature id at most once, as the text pipeline guarantees.
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


def term_frequency(x: SparseFeatures) -> SparseFeatures:
  """Each row scaled to sum to 1 (counts become relative frequencies)."""
  total = jnp.sum(x.weights, axis=-1, keepdims=True)
  return x._replace(weights=x.weights / jnp.where(total == 0, 1, total))


def binary(x: SparseFeatures) -> SparseFeatures:
  """1 where a feature is present (non-zero weight), 0 elsewhere."""
  return x._replace(weights=(x.weights != 0).astype(x.weights.dtype))


def document_frequency(x: SparseFeatures, num_features: int) -> jax.Array:
  """int32 [F]: in how many examples each feature occurs."""
  present = (x.weights != 0).astype(jnp.int32)
  return jnp.zeros(num_features, jnp.int32).at[x.ids.reshape(-1)].add(
      present.reshape(-1))


def inverse_document_frequency(x: SparseFeatures,
                               num_features: int) -> jax.Array:
  """float [F]: smoothed idf ``ln((1 + N) / (1 + df)) + 1`` (as scikit-learn)."""
  n = x.ids.shape[0]
  df = document_frequency(x, num_features)
  return jnp.log((1.0 + n) / (1.0 + df)) + 1.0


def tfidf(x: SparseFeatures, idf: jax.Array,
          sublinear: bool = False) -> SparseFeatures:
  """Counts times idf; ``sublinear`` uses ``1 + ln(count)`` for the counts.

  Args:
    x: counts, ids [N, L] and weights [N, L].
    idf: float [F], fitted on training data only.
    sublinear: dampen repeated terms.

  Returns:
    SparseFeatures with the same ids and TF-IDF weights.
  """
  counts = x.weights
  if sublinear:
    counts = jnp.where(counts > 0, 1.0 + jnp.log(jnp.where(counts > 0, counts,
                                                           1.0)), 0.0)
  return x._replace(weights=(counts * idf[x.ids]).astype(x.weights.dtype))


def l2_normalize(x: SparseFeatures) -> SparseFeatures:
  """Each row divided by its L2 norm; all-zero rows stay zero."""
  norm = jnp.sqrt(jnp.sum(x.weights**2, axis=-1, keepdims=True))
  return x._replace(weights=x.weights / jnp.where(norm == 0, 1, norm))


def gather_rows(V: jax.Array, ids: jax.Array) -> jax.Array:
  """Rows ``V[ids]``: [F, C], int [...] -> [..., C]; out-of-range ids give 0.

  The sparse path's read of W (training and scoring): a padding id F, or any
  id outside [0, F), reads a row of zeros instead of a clamped real row.
  """
  return V.at[ids].get(mode='fill', fill_value=0)
