"""The learning-rate schedule inside the compiled step, its lengths traced.

`optimizers.make_schedule` is optax's schedule with the run length baked
in; the compiled chunk (linjax/engine/chunk_program.py) must not depend on
the run length (it is compiled before the data exist and reused by runs of
any length), so the step computes the same factor from (total, warmup)
steps passed as a traced argument (`schedule_args`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linjax.engine.options import OptimizerOptions


def schedule_args(spec) -> np.ndarray:
  """int32 [2]: (total steps, warmup steps), the schedule's traced lengths,
  of the step's Spec ``spec`` (linjax/engine/step.py)."""
  total = max(int(spec.total_steps), 1)
  warmup = int(float(spec.optimizer.warmup_fraction) * total)
  return np.array([total, warmup], np.int32)


def schedule_shape(opt: OptimizerOptions, step: jax.Array, sched: jax.Array):
  """The schedule of `optimizers.make_schedule` (peak 1) with traced lengths.

  Args:
    opt: OptimizerOptions.
    step: int32 [] steps taken so far.
    sched: int32 [2] from `schedule_args` (a traced argument, so that the
      compiled program does not depend on the run length).

  Returns:
    float32 [] factor of the learning rate (optax's formulas).
  """
  kind = opt.schedule
  total, warmup = sched[0], sched[1]
  if kind == 'constant':
    return jnp.float32(1.0)
  if kind == 'linear':
    count = jnp.clip(step, 0, total)
    return (1.0 - 0.0) * (1.0 - count / total) + 0.0
  if kind == 'exponential':
    rate = jnp.float32(float(opt.decay_rate))
    return jnp.where(step <= 0, 1.0, jnp.power(rate, step / total))
  if kind == 'cosine':
    count = jnp.minimum(step, total)
    return 1.0 * (0.5 * (1 + jnp.cos(jnp.pi * count / total)))
  # warmup_cosine: linear 0 -> 1 over warmup, then cosine 1 -> 0.
  up = (0.0 - 1.0) * (1.0 - jnp.clip(step, 0, warmup) /
                      jnp.maximum(warmup, 1)) + 1.0
  up = jnp.where(warmup > 0, up, 0.0)
  decay = jnp.maximum(total - warmup, 1)
  count = jnp.minimum(step - warmup, decay)
  down = 1.0 * (0.5 * (1 + jnp.cos(jnp.pi * count / decay)))
  return jnp.where(step < warmup, up, down)
