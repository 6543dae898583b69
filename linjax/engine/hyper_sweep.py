"""Hyperparameter sweeps the JAX way: M models in one compiled program.

The compiled chunk of steps takes the learning rate and the L2 strength as
traced arguments, so `sweep` runs the same loop as `training.fit`
(linjax/engine/run_loop.py) with a leading axis of M (learning rate, l2)
pairs and M training states: `jax.vmap` trains the whole grid in one
program, fed the same host-ordered chunks of steps. The packed batches are
shared (packed once, read once per step for all M models), there is one
compilation instead of M, and no per-model Python. Memory grows M-fold (M
copies of W and of the optimiser state), so the grid must fit in device
memory. Models are compared on the validation split by ``training.metric``
after ``training.epochs`` epochs; a model whose loss went non-finite is
reported with NaN metrics and never chosen. For example::

  result = sweep(x, y, C, learning_rates=[4.0, 16.0, 28.0], l2s=[0.0, 1e-6],
                 val_x=val_x, val_y=val_y)
  result.best_lr, result.best_l2, result.grid[0]['val_accuracy']
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np

from linjax.core import model
from linjax.core.errors import ConfigError
from linjax.engine import run_loop
from linjax.engine.options import check_decay
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.engine.training import run_options
from linjax.engine.training import TrainingDiverged
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


def sweep(train_x: CsrFeatures, train_y, num_classes: int, *,
          learning_rates, l2s, val_x: CsrFeatures, val_y,
          optimizer: OptimizerOptions = OptimizerOptions(),
          training: TrainOptions = TrainOptions()) -> SweepResult:
  """Trains the grid ``learning_rates x l2s`` with vmap; picks on validation.

  Args:
    train_x, train_y: CsrFeatures [N, F] and int labels [N].
    num_classes: C.
    learning_rates: M1 positive floats.
    l2s: M2 non-negative floats.
    val_x, val_y: the validation split.
    optimizer, training: as for `training.fit`; their learning_rate and l2
      are replaced by the grid's values, every other option applies to all
      models.

  Returns:
    SweepResult over M = M1 * M2 models (grid in lr-major order).
  """
  start = time.perf_counter()
  grid = list(itertools.product([float(v) for v in learning_rates],
                                [float(v) for v in l2s]))
  if not grid:
    raise ConfigError('sweep: learning_rates and l2s must be non-empty.')
  for lr, l2 in grid:  # every grid point must be valid options
    point = dataclasses.replace(optimizer, learning_rate=lr)  # validates lr
    dataclasses.replace(training, l2=l2)                      # validates l2
    check_decay(point, l2)
  train_x.validate('train_x')
  # The data's rules (docs_per_step, max_steps), exactly as `fit` applies
  # them, so each grid point trains the model `fit` would.
  training = run_options(train_x, training)
  y = run_loop.check_labels(train_y, train_x.num_docs, num_classes, 'train_y',
                           training.loss)
  val_y = run_loop.check_labels(val_y, val_x.num_docs, num_classes, 'val_y',
                                training.loss)
  run = run_loop.prepare(train_x, y, num_classes, optimizer, training,
                         learning_rates=[g[0] for g in grid],
                         l2s=[g[1] for g in grid], data_parallel=False)
  losses = [step_losses for _, step_losses, _ in run_loop.epochs(run)]
  losses = np.concatenate(losses, axis=1)
  results, best, best_value = [], None, None
  for i, (lr, l2) in enumerate(grid):
    record = dict(lr=lr, l2=l2, val_accuracy=float('nan'),
                  val_loss=float('nan'),
                  train_loss=float(losses[i, -run.packed.num_steps:].mean()))
    if np.all(np.isfinite(losses[i])):
      m = run_loop.validation_metrics(run.state, val_x, val_y, model_index=i,
                                      loss=run.spec.loss)
      record.update(val_accuracy=m['accuracy'], val_loss=m['loss'])
      value = record['val_' + training.metric]
      if np.isfinite(value) and run_loop.better(training.metric, value,
                                                best_value):
        best, best_value = i, value
    results.append(record)
  if best is None:
    raise TrainingDiverged(training.epochs, 0, float('nan'),
                           min(g[0] for g in grid))
  state = run.state
  params = model.Params(
      np.asarray(state.V[best] * state.scale[best], np.float32),
      np.asarray(state.b[best], np.float32))
  return SweepResult(grid=results, params=params, best_lr=grid[best][0],
                     best_l2=grid[best][1],
                     seconds=time.perf_counter() - start,
                     compile_seconds=run.compile_seconds)
