"""Optimisers and learning-rate schedules, built from optax by `OptimizerOptions`.

`make_optimizer` returns the plain optax chain for a dense model

  clip_by_global_norm -> preconditioner -> add_decayed_weights -> lr schedule

for users who train `Params` with their own loop, e.g.::

  opt = make_optimizer(OptimizerOptions(name='adam', learning_rate=0.1),
                       total_steps=100)
  state = opt.init(params)
  grads = jax.grad(linjax.objective)(params, x, y, 0.0)
  updates, state = opt.update(grads, state, params)
  params = optax.apply_updates(params, updates)

The training engine uses the same pieces separately (`make_direction` for the
clip+preconditioner part, and the schedule's shape with traced lengths in
linjax/engine/step.py), because its sparse path applies the weight decay
through a global scale and multiplies the learning rate in itself (so a sweep
can vmap over it). For every step t:

  W <- W - lr * shape(t) * (direction(g) + weight_decay * W)

which is exactly what the optax chain computes.
"""

from __future__ import annotations

import jax
import optax

from linjax.engine.options import OptimizerOptions


def make_schedule(options: OptimizerOptions, total_steps: int,
                  peak: float | None = None) -> optax.Schedule:
  """The learning-rate schedule of ``options``.

  Args:
    options: OptimizerOptions.
    total_steps: number of optimiser steps in the whole run (>= 1).
    peak: overrides ``learning_rate`` (1.0 gives the schedule's shape).

  Returns:
    optax schedule: step count (int) -> learning rate (float scalar).
  """
  total = max(int(total_steps), 1)
  lr = float(options.learning_rate) if peak is None else peak
  kind = options.schedule
  if kind == 'constant':
    return optax.constant_schedule(lr)
  if kind == 'linear':
    return optax.linear_schedule(lr, 0.0, total)
  if kind == 'exponential':
    return optax.exponential_decay(
        lr, transition_steps=total,
        decay_rate=float(options.decay_rate))
  if kind == 'cosine':
    return optax.cosine_decay_schedule(lr, total)
  warmup = int(float(options.warmup_fraction) * total)
  return optax.warmup_cosine_decay_schedule(
      0.0, lr, warmup_steps=warmup, decay_steps=total, end_value=0.0)


def make_direction(options: OptimizerOptions) -> optax.GradientTransformation:
  """Clipping and the optimiser's preconditioner, without lr or decay.

  sgd: the gradient (or its momentum trace); adagrad: ``g / sqrt(sum g^2)``
  (optax defaults: initial accumulator 0.1, eps 1e-7); adam: the bias-corrected
  ``m / (sqrt(v) + eps)`` (b1 0.9, b2 0.999, eps 1e-8).
  """
  parts = []
  clip = float(options.clip_norm)
  if clip > 0:
    parts.append(optax.clip_by_global_norm(clip))
  name = options.name
  if name == 'sgd':
    momentum = float(options.momentum)
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


def make_optimizer(options: OptimizerOptions,
                   total_steps: int) -> optax.GradientTransformation:
  """The optax optimiser of ``options`` (see the module docstring).

  Args:
    options: OptimizerOptions.
    total_steps: number of steps in the run (sets the schedule's length).

  Returns:
    optax.GradientTransformation; ``updates`` are to be added to the params.
  """
  parts = [make_direction(options)]
  weight_decay = float(options.weight_decay)
  if weight_decay > 0:
    parts.append(optax.add_decayed_weights(weight_decay, mask=decay_mask))
  parts.append(optax.scale_by_learning_rate(
      make_schedule(options, total_steps)))
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
