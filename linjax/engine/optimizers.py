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

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from linjax.core import model
from linjax.core import named_objects
from linjax.core.named_objects import NameNotFound

# OptimizerOptions (linjax/engine/options.py, which validates its name with
# this table) is the ``options`` argument of the functions below.


def make_schedule(options, total_steps: int,
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


# -- the table ----------------------------------------------------------------


class OptimizerNotFound(NameNotFound):
  """An optimizer name is neither in the table nor an importable
  MODULE:NAME of an optax transformation."""


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """One optimiser: its name and its optax factory.

  Attributes:
    name: the table's key (``optimizer.name``).
    direction: ``(OptimizerOptions) -> optax.GradientTransformation | None``:
      the optimiser's preconditioner, whose updates point along the gradient
      (a ``scale_by_*`` transformation: no learning rate, no weight decay,
      which the engine applies itself); None: the gradient itself (SGD).
      The sparse path applies it to the rows a step touches, so it must be
      element-wise (each coordinate's update depends on its own gradients
      and on scalars such as a step count).
    options: the `OptimizerOptions` fields it reads besides the common ones
      (a non-default value with another optimiser is an error).
  """

  name: str
  direction: Callable[[Any], optax.GradientTransformation | None]
  options: tuple = ()


def _sgd(options):
  momentum = float(options.momentum)
  return optax.trace(decay=momentum) if momentum > 0 else None


_BUILT_IN = (
    # The gradient, or its momentum trace.
    Optimizer('sgd', _sgd, ('momentum',)),
    # g / sqrt(sum g^2) (initial accumulator 0.1, eps 1e-7).
    Optimizer('adagrad', lambda o: optax.scale_by_rss(
        initial_accumulator_value=0.1, eps=1e-7)),
    # The bias-corrected m / (sqrt(v) + eps) (b1 0.9, b2 0.999, eps 1e-8).
    Optimizer('adam', lambda o: optax.scale_by_adam(b1=0.9, b2=0.999,
                                                    eps=1e-8)),
    # sign(interpolated momentum) (b1 0.9, b2 0.99): every step moves each
    # touched weight by the learning rate; take it 3-10x below Adam's.
    Optimizer('lion', lambda o: optax.scale_by_lion(b1=0.9, b2=0.99)),
    # Adam with the variance of g around its mean (b1 0.9, b2 0.999).
    Optimizer('adabelief', lambda o: optax.scale_by_belief(b1=0.9,
                                                           b2=0.999)),
)
BUILT_IN_NAMES = tuple(o.name for o in _BUILT_IN)
_TABLE = {o.name: o for o in _BUILT_IN}


def optimizer_names() -> tuple[str, ...]:
  """The names in the table: the built-in optimisers, then registered ones."""
  return tuple(_TABLE)


def register_optimizer(name: str, direction, options: tuple = ()) -> None:
  """Adds an optimiser of your own under ``name``.

  ``direction``: an optax GradientTransformation whose updates point along
  the gradient (e.g. ``optax.scale_by_lion(b1=0.95)``), or a function of
  the `OptimizerOptions` returning one (see `Optimizer`). A built-in name
  cannot be replaced.
  """
  if name in BUILT_IN_NAMES:
    raise ValueError(f'register_optimizer: {name!r} is a built-in optimizer;'
                     ' choose another name.')
  _TABLE[name] = Optimizer(name, _factory(direction, name), tuple(options))


def _factory(value, name: str):
  if isinstance(value, optax.GradientTransformation):
    return lambda options: value
  if callable(value):
    return value
  raise OptimizerNotFound(f'optimizer {name!r} names a '
                          f'{type(value).__name__}, not an optax '
                          f'GradientTransformation or a function making one')


def _user_transformation(value, ref: str) -> optax.GradientTransformation:
  """The transformation a ``MODULE:NAME`` attribute gives, checked once."""
  if not isinstance(value, optax.GradientTransformation):
    if not callable(value):
      _factory(value, ref)
    try:
      value = value()
    except Exception as e:  # pylint: disable=broad-except
      raise OptimizerNotFound(
          f'optimizer {ref!r}: calling it with no arguments failed '
          f'({type(e).__name__}: {" ".join(str(e).split())}); name an optax '
          'transformation without a learning rate, e.g. '
          'optax:scale_by_adam') from None
    if not isinstance(value, optax.GradientTransformation):
      raise OptimizerNotFound(f'optimizer {ref!r} returned a '
                              f'{type(value).__name__}, not an optax '
                              'GradientTransformation')
  # Its updates must point along the gradient: linjax subtracts lr * them.
  g = {'W': jnp.asarray([[1.0, -2.0], [0.5, 3.0]])}
  try:
    u, _ = value.update(g, value.init(g), g)
    along = float(jnp.sum(u['W'] * g['W']))
  except Exception as e:  # pylint: disable=broad-except
    raise OptimizerNotFound(f'optimizer {ref!r}: its update failed '
                            f'({type(e).__name__}: '
                            f'{" ".join(str(e).split())})') from None
  if not along > 0:
    raise OptimizerNotFound(
        f'optimizer {ref!r}: its updates point against the gradient (it '
        'applies a learning rate); name the transformation before it, e.g. '
        'optax:scale_by_adam rather than optax:adam')
  return value


def get_optimizer(name: str) -> Optimizer:
  """The table's `Optimizer` for a name or a ``MODULE:NAME`` reference.

  MODULE:NAME names an optax GradientTransformation whose updates point
  along the gradient (``optax:scale_by_lion``, or one in a module of
  yours), or a function of no arguments returning one.

  Raises:
    OptimizerNotFound: one line naming it and what is wrong.
  """
  if isinstance(name, str) and name in _TABLE:
    return _TABLE[name]
  if not named_objects.is_reference(name):
    raise OptimizerNotFound(f'unknown optimizer {name!r}; known: '
                            f'{", ".join(optimizer_names())}, or MODULE:NAME '
                            'of an optax transformation')
  try:
    value = named_objects.resolve(name)
  except NameNotFound as e:
    raise OptimizerNotFound(f'optimizer {e}') from None
  transformation = _user_transformation(value, name)
  _TABLE[name] = found = Optimizer(name, lambda options: transformation)
  return found


def _parts(options) -> list:
  parts = []
  clip = float(options.clip_norm)
  if clip > 0:
    parts.append(optax.clip_by_global_norm(clip))
  direction = get_optimizer(options.name).direction(options)
  if direction is not None:
    parts.append(direction)
  return parts


def make_direction(options) -> optax.GradientTransformation:
  """Clipping and the optimiser's preconditioner, without lr or decay.

  sgd: the gradient (or its momentum trace); adagrad: ``g / sqrt(sum g^2)``
  (optax defaults: initial accumulator 0.1, eps 1e-7); adam: the bias-corrected
  ``m / (sqrt(v) + eps)`` (b1 0.9, b2 0.999, eps 1e-8); lion, adabelief and
  a user's: see the table.
  """
  parts = _parts(options)
  return optax.chain(*parts) if parts else optax.identity()


def is_plain(options) -> bool:
  """Whether the direction is the gradient itself (plain SGD, no clipping):
  then an L2 penalty's gradient ``2 l2 W`` is a decay of W, exact through
  the engine's global scale."""
  return not _parts(options)


@functools.lru_cache(maxsize=256)
def has_row_state(options) -> bool:
  """Whether the optimiser's state holds leaves shaped like W (momentum,
  Adagrad's accumulator, Adam's moments, ...): found from the optax state
  tree of a small model, not from the name."""
  W = jax.ShapeDtypeStruct((5, 3), jnp.float32)
  b = jax.ShapeDtypeStruct((3,), jnp.float32)
  state = jax.eval_shape(make_direction(options).init, model.Params(W, b))
  return any(tuple(leaf.shape) == W.shape
             for leaf in jax.tree_util.tree_leaves(state))


def decay_mask(params):
  """True for matrices (W), False for vectors (b): weight decay skips biases."""
  return jax.tree_util.tree_map(lambda p: getattr(p, 'ndim', 0) >= 2, params)


def make_optimizer(options, total_steps: int) -> optax.GradientTransformation:
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
# accumulator, Adam moments, Lion's momentum, ...) mirrors the params, so it
# holds leaves shaped like W [F, C]. A sparse step gathers the rows of those
# leaves for the touched ids, runs the ordinary optax update on the [U, C]
# slices, and scatters them back: the state of an untouched row is left as
# it is ("lazy" Adam/Adagrad/momentum). For Adagrad (and plain SGD) this is
# exact, because a zero gradient leaves the accumulator and the parameter
# unchanged; for Adam, momentum and Lion it differs from the dense update,
# which would keep moving untouched rows with their stale moments (the
# behaviour of TensorFlow's LazyAdam). Other leaves (Adam's step count, the
# moments of b) stay whole, so bias correction uses the true step.


def gather_state_rows(opt_state, ids: jax.Array, row_shape):
  """Slices every leaf of ``opt_state`` shaped like W (``row_shape``,
  (F, C)) to the rows ``ids`` [U]. Rows outside [0, F) (the padding id F)
  read 0."""
  row_shape = tuple(row_shape)
  return jax.tree_util.tree_map(
      lambda leaf: (leaf.at[ids].get(mode='fill', fill_value=0)
                    if tuple(leaf.shape) == row_shape else leaf), opt_state)


def scatter_state_rows(opt_state, row_state, ids: jax.Array, row_shape):
  """Writes ``row_state`` (from `gather_state_rows`) back at rows ``ids``.

  Padding ids (>= F) are dropped; other leaves take their new value.
  """
  row_shape = tuple(row_shape)
  return jax.tree_util.tree_map(
      lambda full, rows: (full.at[ids].set(rows, mode='drop')
                          if tuple(full.shape) == row_shape else rows),
      opt_state, row_state)
