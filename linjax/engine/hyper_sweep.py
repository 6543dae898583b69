"""Hyperparameter sweeps the JAX way: K models in one compiled program.

The engine's compiled chunk of steps (`train._chunk`) takes the learning
rate and the L2 strength as traced arguments, so `jax.vmap` over a leading
axis of K (learning rate, l2) pairs and of K training states trains the whole
grid in one compiled program, fed the same host-ordered chunks of steps as
`train.fit`: the packed batches are shared (packed once,
read once per step for all K models), there is one compilation instead of K,
and no per-model Python. Memory grows K-fold (K copies of W and of the
optimiser state), so the grid must fit in device memory. Models are compared
on the validation split by ``config.train.metric`` after
``config.train.epochs`` epochs; a model whose loss went non-finite is
reported with NaN metrics and never chosen.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np

from linjax.engine import chunk_program as chunks
from linjax.core import model
from linjax.engine import packing
from linjax.engine import step as step_lib
from linjax.engine import training as train
from linjax.text.csr import CsrFeatures


@dataclasses.dataclass
class SweepResult:
  """grid: one dict per (lr, l2) with lr, l2, val_accuracy, val_loss,
  train_loss; params: the best model (float32 numpy); seconds: wall time."""

  grid: list
  params: model.Params
  best_lr: float
  best_l2: float
  seconds: float
  compile_seconds: float = 0.0


def run_sweep(train_x: CsrFeatures, train_y, num_classes: int, config,
              learning_rates, l2s, val_x: CsrFeatures, val_y) -> SweepResult:
  """Trains the grid ``learning_rates x l2s`` with vmap; picks on validation.

  Args:
    train_x, train_y: CsrFeatures [N, F] and int labels [N].
    num_classes: C.
    config: as for `train.fit` (optimizer.learning_rate and train.l2 are
      replaced by the grid values; every other key applies to all models).
    learning_rates: K1 positive floats.
    l2s: K2 non-negative floats.
    val_x, val_y: the validation split.

  Returns:
    SweepResult over K = K1 * K2 models (grid in lr-major order).
  """
  start = time.perf_counter()
  config = config.copy_and_resolve_references()
  grid = list(itertools.product([float(v) for v in learning_rates],
                                [float(v) for v in l2s]))
  if not grid:
    raise train.ConfigError('run_sweep: learning_rates and l2s must be '
                            'non-empty.')
  for lr, l2 in grid:  # every grid point must be a valid config
    config.optimizer.learning_rate, config.train.l2 = lr, l2
    train.validate_config(config)
  tc = config.train
  train_x.validate('train_x')
  y = train._check_labels(train_y, train_x.num_docs, num_classes, 'train_y')
  val_y = train._check_labels(val_y, val_x.num_docs, num_classes, 'val_y')
  F = train_x.num_features
  spec = train.make_spec(config, F, num_classes, 0,
                         l2_nonzero=any(l2 > 0 for _, l2 in grid))
  packed = packing.pack(train_x, y, token_budget=tc.token_budget,
                        max_docs=tc.batch_size, seed=tc.seed,
                        dedupe=spec.dedupe)
  spec = train.with_steps(spec, packed.num_steps * tc.epochs,
                          max(g[0] for g in grid), max(g[1] for g in grid))
  k = len(grid)
  one = train.init_state(spec, model.init_params(None, F, num_classes))
  states = jax.tree_util.tree_map(
      lambda a: jnp.broadcast_to(a, (k,) + a.shape).copy(), one)
  del one
  hyper = (np.array([g[0] for g in grid], np.float32),
           np.array([g[1] for g in grid], np.float32))
  batches = packed.device_arrays()
  chunk_steps = train.steps_per_call(config)
  sched = step_lib.schedule_args(spec)
  args = chunks.abstract_args(spec, chunk_steps, packed.token_budget,
                              packed.uids.shape[-1], tc.batch_size)
  args = (states,) + args[1:2] + (hyper,) + args[3:]
  fn, compile_seconds = train.compiled_epoch(spec, args, vmapped=True)
  losses = np.zeros((k, 0), np.float32)
  for epoch in range(tc.epochs):
    states, step_losses = chunks.run_epoch(
        fn, states, batches, hyper, sched,
        train.batch_order(tc.seed, epoch, packed.num_steps), spec,
        chunk_steps)
    losses = np.concatenate([losses, step_losses], axis=1)
  results, best, best_value = [], None, None
  metric = tc.get('metric', 'accuracy')
  for i, (lr, l2) in enumerate(grid):
    finite = bool(np.all(np.isfinite(losses[i])))
    record = dict(lr=lr, l2=l2, val_accuracy=float('nan'),
                  val_loss=float('nan'),
                  train_loss=float(losses[i, -packed.num_steps:].mean()))
    if finite:
      z = train._logits_scaled(states.V[i], states.scale[i], states.b[i],
                               val_x, 4096)
      m = train._metrics(z, val_y)
      record.update(val_accuracy=m['accuracy'], val_loss=m['loss'])
      value = record['val_' + metric]
      if np.isfinite(value) and train._better(metric, value, best_value):
        best, best_value = i, value
    results.append(record)
  if best is None:
    raise train.TrainingDiverged(tc.epochs, 0, float('nan'),
                                 min(g[0] for g in grid))
  params = model.Params(
      np.asarray(states.V[best] * states.scale[best], np.float32),
      np.asarray(states.b[best], np.float32))
  return SweepResult(grid=results, params=params, best_lr=grid[best][0],
                     best_l2=grid[best][1],
                     seconds=time.perf_counter() - start,
                     compile_seconds=compile_seconds)
