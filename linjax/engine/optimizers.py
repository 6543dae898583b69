"""Optimisers and learning-rate schedules, built from optax by configuration.

The keys are those of ``config.optimizer`` (experiments/configs/default.py):

  name            sgd | adagrad | adam
  learning_rate   peak step size (> 0)
  schedule        constant | linear (to zero, fastText's) | exponential |
                  cosine | warmup_cosine
  momentum        sgd only, in [0, 1)
  warmup_fraction warmup_cosine only, fraction of the run spent warming up
  decay_rate      exponential only: lr factor over the whole run, in (0, 1]
  weight_decay    decoupled weight decay (AdamW style), >= 0; matrices only
  clip_norm       global gradient-norm clipping; 0 turns it off

`make_optimizer` returns the plain optax chain

  clip_by_global_norm -> preconditioner -> add_decayed_weights -> lr schedule

The training engine uses the same pieces separately (`make_direction` for the
clip+preconditioner part and `make_schedule` with a unit peak), because its
sparse path applies the weight decay through a global scale and multiplies
the learning rate in itself (so a sweep can vmap over it). For every step t:

  W <- W - lr * shape(t) * (direction(g) + weight_decay * W)

which is exactly what the optax chain computes.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import optax

OPTIMIZERS = ('sgd', 'adagrad', 'adam')
SCHEDULES = ('constant', 'linear', 'exponential', 'cosine', 'warmup_cosine')


class ConfigError(ValueError):
  """A configuration value is invalid; the message names the key."""


def _get(cfg: Mapping[str, Any] | Any, key: str, default=None):
  """Reads ``cfg.key`` from a ConfigDict, dict or object, with a default."""
  if isinstance(cfg, Mapping):
    return cfg.get(key, default)
  getter = getattr(cfg, 'get', None)
  if getter is not None:
    return getter(key, default)
  return getattr(cfg, key, default)


def _number(cfg, key: str, prefix: str, default=None) -> float:
  value = _get(cfg, key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ConfigError(f'{prefix}.{key} must be a number, got {value!r}.')
  if value != value:  # NaN
    raise ConfigError(f'{prefix}.{key} must be a number, got NaN.')
  return float(value)


def validate_optimizer_config(cfg, prefix: str = 'optimizer') -> None:
  """Raises `ConfigError` naming the first bad key of ``config.optimizer``."""
  name = _get(cfg, 'name', 'sgd')
  if name not in OPTIMIZERS:
    raise ConfigError(f'{prefix}.name must be one of {OPTIMIZERS}, got '
                      f'{name!r}.')
  schedule = _get(cfg, 'schedule', 'constant')
  if schedule not in SCHEDULES:
    raise ConfigError(f'{prefix}.schedule must be one of {SCHEDULES}, got '
                      f'{schedule!r}.')
  lr = _number(cfg, 'learning_rate', prefix)
  if not lr > 0 or lr == float('inf'):
    raise ConfigError(f'{prefix}.learning_rate must be a finite number > 0, '
                      f'got {lr}.')
  momentum = _number(cfg, 'momentum', prefix, 0.0)
  if not 0.0 <= momentum < 1.0:
    raise ConfigError(f'{prefix}.momentum must lie in [0, 1), got '
                      f'{momentum}.')
  warmup = _number(cfg, 'warmup_fraction', prefix, 0.05)
  if not 0.0 <= warmup < 1.0:
    raise ConfigError(f'{prefix}.warmup_fraction must lie in [0, 1), got '
                      f'{warmup}.')
  decay_rate = _number(cfg, 'decay_rate', prefix, 0.1)
  if not 0.0 < decay_rate <= 1.0:
    raise ConfigError(f'{prefix}.decay_rate must lie in (0, 1], got '
                      f'{decay_rate}.')
  for key in ('weight_decay', 'clip_norm'):
    value = _number(cfg, key, prefix, 0.0)
    if not 0.0 <= value < float('inf'):
      raise ConfigError(f'{prefix}.{key} must be a finite number >= 0, got '
                        f'{value}.')
  if momentum > 0 and name != 'sgd':
    raise ConfigError(f'{prefix}.momentum applies to sgd only; got '
                      f'momentum={momentum} with name={name!r}.')


def make_schedule(opt_config, total_steps: int,
                  peak: float | None = None) -> optax.Schedule:
  """The learning-rate schedule of ``config.optimizer``.

  Args:
    opt_config: ``config.optimizer``.
    total_steps: number of optimiser steps in the whole run (>= 1).
    peak: overrides ``learning_rate`` (the engine uses 1.0 for the shape).

  Returns:
    optax schedule: step count (int) -> learning rate (float scalar).
  """
  validate_optimizer_config(opt_config)
  total = max(int(total_steps), 1)
  lr = float(_get(opt_config, 'learning_rate')) if peak is None else peak
  kind = _get(opt_config, 'schedule', 'constant')
  if kind == 'constant':
    return optax.constant_schedule(lr)
  if kind == 'linear':
    return optax.linear_schedule(lr, 0.0, total)
  if kind == 'exponential':
    return optax.exponential_decay(
        lr, transition_steps=total,
        decay_rate=float(_get(opt_config, 'decay_rate', 0.1)))
  if kind == 'cosine':
    return optax.cosine_decay_schedule(lr, total)
  warmup = int(float(_get(opt_config, 'warmup_fraction', 0.05)) * total)
  return optax.warmup_cosine_decay_schedule(
      0.0, lr, warmup_steps=warmup, decay_steps=total, end_value=0.0)


def make_direction(opt_config) -> optax.GradientTransformation:
  """Clipping and the optimiser's preconditioner, without lr or decay.

  sgd: the gradient (or its momentum trace); adagrad: ``g / sqrt(sum g^2)``
  (optax defaults: initial accumulator 0.1, eps 1e-7); adam: the bias-corrected
  ``m / (sqrt(v) + eps)`` (b1 0.9, b2 0.999, eps 1e-8).
  """
  validate_optimizer_config(opt_config)
  parts = []
  clip = float(_get(opt_config, 'clip_norm', 0.0))
  if clip > 0:
    parts.append(optax.clip_by_global_norm(clip))
  name = _get(opt_config, 'name', 'sgd')
  if name == 'sgd':
    momentum = float(_get(opt_config, 'momentum', 0.0))
    if momentum > 0:
      parts.append(optax.trace(decay=momentum))
  elif name == 'adagrad':
    parts.append(optax.scale_by_rss(initial_accumulator_value=0.1, eps=1e-7))
  else:
    parts.append(optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8))
  return optax.chain(*parts) if parts else optax.identity()


def decay_mask(params):
  """True for matrices (W), False for vectors (b): weight decay skips biases."""
  return jax.tree_util.tree_map(lambda p: getattr(p, 'ndim', 0) >= 2, params)


def make_optimizer(opt_config,
                   total_steps: int) -> optax.GradientTransformation:
  """The optax optimiser of ``config.optimizer`` (see module docstring).

  Args:
    opt_config: ``config.optimizer``.
    total_steps: number of steps in the run (sets the schedule's length).

  Returns:
    optax.GradientTransformation; ``updates`` are to be added to the params.
  """
  parts = [make_direction(opt_config)]
  weight_decay = float(_get(opt_config, 'weight_decay', 0.0))
  if weight_decay > 0:
    parts.append(optax.add_decayed_weights(weight_decay, mask=decay_mask))
  parts.append(optax.scale_by_learning_rate(
      make_schedule(opt_config, total_steps)))
  return optax.chain(*parts)


# Row-sparse application (the engine's sparse path). ---------------------------
#
# The optimiser state of a stateful transformation (momentum trace, Adagrad
# accumulator, Adam moments) mirrors the params, so it holds a [F, C] leaf for
# W. A sparse step gathers the rows of those leaves for the touched ids, runs
# the ordinary optax update on the [U, C] slices, and scatters them back: the
# state of an untouched row is left as it is ("lazy" Adam/Adagrad/momentum).
# For Adagrad (and plain SGD) this is exact, because a zero gradient leaves the
# accumulator and the parameter unchanged; for Adam and momentum it differs
# from the dense update, which would keep moving untouched rows with their
# stale moments (the behaviour of TensorFlow's LazyAdam). Scalar leaves such
# as Adam's step count stay global, so bias correction uses the true step.


def _is_row_leaf(path) -> bool:
  return any(getattr(k, 'name', None) == 'W' for k in path)


def gather_state_rows(opt_state, ids: jax.Array):
  """Slices every W-shaped leaf of ``opt_state`` to the rows ``ids`` [U].

  Rows outside [0, F) (the padding id F) read 0.
  """
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: (leaf.at[ids].get(mode='fill', fill_value=0)
                          if _is_row_leaf(path) else leaf), opt_state)


def scatter_state_rows(opt_state, row_state, ids: jax.Array):
  """Writes ``row_state`` (from `gather_state_rows`) back at rows ``ids``.

  Padding ids (>= F) are dropped; non-row leaves take their new value.
  """
  return jax.tree_util.tree_map_with_path(
      lambda path, full, rows: (full.at[ids].set(rows, mode='drop')
                                if _is_row_leaf(path) else rows),
      opt_state, row_state)


def has_row_state(opt_config) -> bool:
  """Whether the optimiser keeps per-row state (momentum, Adagrad, Adam)."""
  name = _get(opt_config, 'name', 'sgd')
  return name != 'sgd' or float(_get(opt_config, 'momentum', 0.0)) > 0
