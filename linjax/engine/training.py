"""The training loop: `fit` trains softmax regression with a compiled step loop.

Shapes: N documents, F features, C classes.

`fit` validates the config and labels, packs the corpus ONCE into
fixed-shape steps (linjax/engine/packing.py), compiles a chunk of
``train.steps_per_call`` steps (linjax/engine/chunk_program.py; the step in linjax/engine/step.py:
the sparse row update, the scale/L2 scheme, the data-parallel combine) and
runs ``train.epochs`` epochs of host-ordered chunks, scoring the validation
split after each epoch (linjax/engine/scoring.py). The chunk's shapes do not depend
on the data beyond F and C, so `precompile` can compile it while the host
featurises.

* Early stopping: with ``train.patience`` > 0 and a validation split, the
  best epoch's params (by ``train.metric``) are returned.
* Checkpoints: every ``train.checkpoint_every`` epochs into ``checkpoint_dir``
  (linjax/engine/checkpoint.py); a later call resumes from the latest one, provided
  it came from the same config and data (a fingerprint is checked).
* Divergence: the scan returns every step's loss; a non-finite one raises
  `TrainingDiverged` naming the first bad epoch and step; the last good
  checkpoint is left in place.

The step, epoch and prediction functions are re-exported here, so that
``train.predict_logits``, ``train.make_spec`` etc. keep working.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import losses
from linjax.core import model
from linjax.engine import optimizers as optim
from linjax.engine import packing
from linjax.text.csr import CsrFeatures
from linjax.core.features import SparseFeatures
from linjax.engine.optimizers import ConfigError
# Re-exported: callers use them as train.X (sweep.py also uses the privates).
from linjax.engine.scoring import _logits_scaled
from linjax.engine.scoring import _metrics
from linjax.engine.scoring import evaluate
from linjax.engine.scoring import predict_logits
from linjax.engine.scoring import predict_proba
from linjax.engine import chunk_program as chunks
from linjax.engine import host_memory
from linjax.engine import step as step_lib
from linjax.engine.chunk_program import _chunk
from linjax.engine.chunk_program import _epoch
from linjax.engine.chunk_program import clear_cache
from linjax.engine.chunk_program import compiled_epoch
from linjax.engine.chunk_program import enable_compile_cache
from linjax.engine.chunk_program import TRACE_COUNTS
from linjax.engine.step import AXIS
from linjax.engine.step import batch_order
from linjax.engine.step import choose_update
from linjax.engine.step import DENSE_MAX_FEATURES
from linjax.engine.step import init_state
from linjax.engine.step import make_spec
from linjax.engine.step import Spec
from linjax.engine.step import state_params
from linjax.engine.step import TrainState
from linjax.engine.step import with_steps

Params = model.Params


class TrainingDiverged(RuntimeError):
  """The training loss became NaN or infinite."""

  def __init__(self, epoch: int, step: int, loss: float, learning_rate: float):
    self.epoch, self.step, self.loss = epoch, step, loss
    super().__init__(
        f'Training diverged at epoch {epoch}, step {step}: the loss is {loss}. '
        f'Try a smaller learning rate than optimizer.learning_rate='
        f'{learning_rate:g} (e.g. {learning_rate / 4:g}), or set '
        f'optimizer.clip_norm. The last good checkpoint (if any) is kept.')


@dataclasses.dataclass
class FitResult:
  """What `fit` returns; params are float32 numpy arrays."""

  params: Params
  history: list
  best_epoch: int
  epochs_run: int
  compile_seconds: float
  train_seconds: float
  update: str
  pack_seconds: float = 0.0
  # compile_seconds: what fit spent compiling, or waiting for a compile
  # started by `precompile` (0 when it was ready).


# Configuration. -----------------------------------------------------------


def _int(cfg, key, lo, prefix='train'):
  value = cfg.get(key)
  if isinstance(value, bool) or not isinstance(value, int) or value < lo:
    raise ConfigError(f'{prefix}.{key} must be an integer >= {lo}, got '
                      f'{value!r}.')
  return value


def validate_config(config) -> None:
  """Raises `ConfigError` naming the first bad ``optimizer.*``/``train.*``."""
  if 'optimizer' not in config or 'train' not in config:
    raise ConfigError('config needs the sections optimizer and train '
                      '(see experiments/configs/default.py).')
  optim.validate_optimizer_config(config.optimizer)
  tc = config.train
  _int(tc, 'batch_size', 1)
  _int(tc, 'token_budget', 1)
  _int(tc, 'epochs', 1)
  _int(tc, 'seed', 0)
  _int(tc, 'patience', 0)
  _int(tc, 'checkpoint_every', 0) if 'checkpoint_every' in tc else None
  _int(tc, 'steps_per_call', 1) if 'steps_per_call' in tc else None
  l2 = tc.get('l2', 0.0)
  if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not (
      0.0 <= l2 < float('inf')):
    raise ConfigError(f'train.l2 must be a finite number >= 0, got {l2!r}.')
  if tc.get('metric', 'accuracy') not in ('accuracy', 'loss'):
    raise ConfigError(f"train.metric must be 'accuracy' or 'loss', got "
                      f'{tc.get("metric")!r}.')
  if tc.get('update', 'auto') not in ('auto', 'sparse', 'dense'):
    raise ConfigError(f"train.update must be 'auto', 'sparse' or 'dense', got "
                      f'{tc.get("update")!r}.')
  oc = config.optimizer
  decay = float(oc.get('weight_decay', 0.0)) + (
      2.0 * l2 if oc.get('name') == 'sgd' else 0.0)
  if float(oc.learning_rate) * decay >= 1.0:
    raise ConfigError(
        f'train.l2 / optimizer.weight_decay too large for optimizer.'
        f'learning_rate={oc.learning_rate}: each step would multiply W by '
        f'1 - lr * decay <= 0.')


# Gradient diagnostics. ----------------------------------------------------


def per_example_grads(params: Params, x: SparseFeatures, y) -> Params:
  """Gradients of each example's loss: Params with W [N, F, C], b [N, C].

  `losses.example_loss` (one example) differentiated and vmapped over the
  batch; for diagnostics on small F (the result is N x F x C).
  """
  return jax.vmap(jax.grad(losses.example_loss), in_axes=(None, 0, 0))(
      params, x, jnp.asarray(y))


def clipped_mean_grad(params: Params, x: SparseFeatures, y,
                      clip_norm: float) -> Params:
  """Mean of per-example gradients, each clipped to L2 norm <= clip_norm."""
  g = per_example_grads(params, x, y)
  norms = jnp.sqrt(sum(jnp.sum(t.reshape(t.shape[0], -1) ** 2, axis=1)
                       for t in g))
  factor = jnp.minimum(1.0, clip_norm / jnp.maximum(norms, 1e-12))
  return jax.tree_util.tree_map(
      lambda t: jnp.tensordot(factor, t, axes=1) / t.shape[0], g)


# fit. ---------------------------------------------------------------------


def steps_per_call(config) -> int:
  """K, the steps one call of the compiled program runs (default 128)."""
  return int(config.train.get('steps_per_call', chunks.STEPS_PER_CALL))


def _mesh_and_shards(mesh, num_shards):
  from linjax.engine import distributed
  if mesh is None:
    mesh = distributed.default_mesh()
  num_devices = mesh.size if mesh is not None else 1
  num_shards = int(num_shards or num_devices)
  if num_shards % num_devices:
    raise ValueError(f'num_shards={num_shards} must be a multiple of the '
                     f'{num_devices} devices.')
  return mesh, num_shards


def precompile(config, num_features: int, num_classes: int, *,
               background: bool = True, mesh=None,
               num_shards: int | None = None, max_doc_features: int = 0):
  """Starts compiling the program a later `fit` with these arguments runs.

  The program does not depend on the data beyond F and C (see linjax/engine/step.py),
  so it can be compiled while the host featurises: XLA's compiler releases
  the GIL. `fit` then finds it in the compile cache, or waits for the
  compile in flight instead of starting its own. If the data turn out to
  need another program (a document longer than ``train.token_budget``, or a
  run long enough that the global scale must be checked), `fit` compiles
  that one as usual.

  Args:
    config: the config `fit` will get.
    num_features: F (known before featurisation in hashing mode).
    num_classes: C.
    background: compile in a daemon thread (False: here, now).
    mesh, num_shards: as for `fit`.
    max_doc_features: the longest training document's number of features,
      if known or estimated (0: assume it fits ``train.token_budget``); `fit`
      raises the budget T to it, rounded up to 8 (linjax/engine/packing.py).

  Returns:
    A `concurrent.futures.Future` of the compiled program (its result is
    rarely needed: `fit` waits by itself).
  """
  validate_config(config)
  tc = config.train
  mesh, num_shards = _mesh_and_shards(mesh, num_shards)
  spec = make_spec(config, int(num_features), int(num_classes), 0,
                   num_shards, mesh is not None)
  budget = packing.slot_budget(tc.token_budget, max_doc_features)
  rows = packing.dedupe_width(budget) if spec.dedupe else budget
  args = chunks.abstract_args(spec, steps_per_call(config), budget, rows,
                              tc.batch_size, mesh)
  if budget > tc.token_budget:
    chunks.WIDTH_HINTS[(spec, mesh)] = budget
  return chunks.compile_async(spec, args, mesh, background=background)


def _check_labels(y, n: int, num_classes: int, name: str) -> np.ndarray:
  y = np.asarray(y)
  if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f'{name}: expected int labels of shape [{n}], got '
                     f'{y.dtype} {y.shape}.')
  if y.size and (y.min() < 0 or y.max() >= num_classes):
    raise ValueError(f'{name}: labels must lie in [0, {num_classes}), found '
                     f'{y.min()}..{y.max()}.')
  return y.astype(np.int32)


def _fingerprint(config, x: CsrFeatures, num_classes: int, spec: Spec):
  train = {k: v for k, v in config.train.to_dict().items()
           if k not in ('patience', 'checkpoint_every', 'gradcheck',
                        'steps_per_call')}
  return dict(optimizer=config.optimizer.to_dict(), train=train,
              num_features=x.num_features, num_classes=num_classes,
              num_docs=x.num_docs, nnz=x.nnz, num_shards=spec.num_shards,
              update='sparse' if spec.sparse else 'dense')


def _better(metric: str, value: float, best: float | None) -> bool:
  if best is None:
    return True
  return value > best if metric == 'accuracy' else value < best


def _pack(train_x, y, config, spec, num_local, offset):
  tc = config.train
  kwargs = dict(max_docs=tc.batch_size, seed=tc.seed, num_shards=num_local,
                shard_offset=offset, dedupe=spec.dedupe)
  # A data-independent row width, as `precompile` assumes.
  rows = packing.dedupe_width(tc.token_budget) if spec.dedupe else 0
  packed = packing.pack(train_x, y, token_budget=tc.token_budget,
                        min_rows=rows, **kwargs)
  if jax.process_count() > 1:  # all processes need the same static shapes
    from linjax.engine import distributed
    shape = (packed.num_steps, packed.uids.shape[-1], packed.token_budget)
    steps, rows, budget = distributed.all_max(shape)
    if (steps, rows, budget) != shape:
      packed = packing.pack(train_x, y, token_budget=int(budget),
                            min_steps=int(steps), min_rows=int(rows), **kwargs)
  return packed


def fit(train_x: CsrFeatures, train_y, num_classes: int, config, *,
        val_x: CsrFeatures | None = None, val_y=None,
        callback: Callable[[dict], None] | None = None,
        checkpoint_dir: str | None = None, init: Params | None = None,
        mesh=None, num_shards: int | None = None) -> FitResult:
  """Trains softmax regression with ``config.optimizer`` and ``config.train``.

  Args:
    train_x: CsrFeatures [N documents, F features] (this process's shard in
      multi-process training).
    train_y: int [N] labels in [0, num_classes).
    num_classes: C.
    config: ConfigDict with sections optimizer and train.
    val_x, val_y: optional validation split for per-epoch metrics and early
      stopping (``train.patience`` > 0 restores the best epoch's params).
    callback: called with each epoch's history record.
    checkpoint_dir: write a checkpoint every ``train.checkpoint_every`` epochs
      and resume from the latest one found there.
    init: initial Params (default zeros).
    mesh: a 1-D 'batch' mesh for data parallelism (default: all devices when
      there are several, see linjax/engine/distributed.py).
    num_shards: sub-batches per step (default: the mesh size, or 1).

  Returns:
    FitResult.
  """
  from linjax.engine import checkpoint
  from linjax.engine import distributed
  validate_config(config)
  tc, oc = config.train, config.optimizer
  train_x.validate('train_x')
  y = _check_labels(train_y, train_x.num_docs, num_classes, 'train_y')
  if val_x is not None:
    val_x.validate('val_x')
    val_y = _check_labels(val_y, val_x.num_docs, num_classes, 'val_y')
  F = train_x.num_features
  mesh, num_shards = _mesh_and_shards(mesh, num_shards)
  num_local = num_shards // jax.process_count()
  offset = jax.process_index() * num_local
  spec = make_spec(config, F, num_classes, 0, num_shards, mesh is not None)

  # Featurisation's freed temporaries go back to the OS before W is made.
  host_memory.trim()
  start = time.perf_counter()
  packed = _pack(train_x, y, config, spec, num_local, offset)
  # precompile's estimate of the longest document may exceed what fit finds
  # (features.min_df prunes after the estimate): pad to its width (exact).
  hint = chunks.WIDTH_HINTS.get((spec, mesh), 0)
  if (jax.process_count() == 1 and
      packed.token_budget < hint <= 2 * packed.token_budget):
    packed = packing.pad_width(packed, hint, F)
  pack_seconds = time.perf_counter() - start
  spec = with_steps(spec, packed.num_steps * tc.epochs, oc.learning_rate,
                    tc.l2)
  nnz = float(distributed.all_sum([train_x.nnz])[0])
  if init is None:
    init = Params(np.zeros((F, num_classes), np.float32),
                  np.zeros(num_classes, np.float32))
  state = init_state(spec, init)
  hyper = (np.float32(oc.learning_rate), np.float32(tc.l2))

  history, best, best_value, best_epoch, bad_epochs, first = [], None, None, 0, 0, 0
  fingerprint = _fingerprint(config, train_x, num_classes, spec)
  if checkpoint_dir and checkpoint.latest_epoch(checkpoint_dir) is not None:
    first, arrays, meta = checkpoint.load(checkpoint_dir)
    if meta['fingerprint'] != json_safe(fingerprint):
      raise checkpoint.CheckpointError(
          f'{checkpoint_dir}: its checkpoints come from another config or '
          f'data set; use a fresh checkpoint_dir.')
    leaves, treedef = jax.tree_util.tree_flatten(state)
    state = jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(arrays[f'state_{i}']) for i in range(len(leaves))])
    history, best_epoch = meta['history'], meta['best_epoch']
    best_value, bad_epochs = meta['best_value'], meta['bad_epochs']
    if 'best_W' in arrays:
      best = Params(arrays['best_W'], arrays['best_b'])
    logging.info('Resuming from %s at epoch %d.', checkpoint_dir, first)

  batches = packed.device_arrays()   # host arrays, fed K steps a call
  chunk_steps = steps_per_call(config)
  sched = step_lib.schedule_args(spec)
  if mesh is not None:
    state, hyper, sched = distributed.replicate((state, hyper, sched), mesh)
  args = chunks.abstract_args(spec, chunk_steps, packed.token_budget,
                              packed.uids.shape[-1], tc.batch_size, mesh)
  fn, compile_seconds = compiled_epoch(spec, args, mesh)
  metric, patience = tc.get('metric', 'accuracy'), tc.patience
  train_seconds, epoch = 0.0, first
  for epoch in range(first, tc.epochs):
    start = time.perf_counter()
    state, step_losses = chunks.run_epoch(
        fn, state, batches, hyper, sched,
        batch_order(tc.seed, epoch, packed.num_steps), spec, chunk_steps, mesh)
    seconds = time.perf_counter() - start
    train_seconds += seconds
    bad = np.flatnonzero(~np.isfinite(step_losses))
    if bad.size:
      raise TrainingDiverged(epoch + 1, int(bad[0]) + 1,
                             float(step_losses[bad[0]]), oc.learning_rate)
    record = dict(epoch=epoch + 1, train_loss=float(step_losses.mean()),
                  val_loss=None, val_accuracy=None,
                  tokens_per_s=nnz / seconds, seconds=seconds)
    value = None
    if val_x is not None:
      V, scale, b = (distributed.local_array(a)
                     for a in (state.V, state.scale, state.b))
      z = _logits_scaled(V, scale, b, val_x, 4096)
      m = _metrics(z, val_y)
      n_val = float(val_x.num_docs)
      total = distributed.all_sum([m['loss'] * n_val, m['accuracy'] * n_val,
                                   n_val])
      record['val_loss'] = float(total[0] / max(total[2], 1))
      record['val_accuracy'] = float(total[1] / max(total[2], 1))
      value = record['val_' + metric]
    history.append(record)
    if callback is not None:
      callback(dict(record))
    if value is not None and _better(metric, value, best_value):
      best_value, best_epoch, bad_epochs = value, epoch + 1, 0
      if patience > 0:
        best = state_params(state)
    elif value is not None:
      bad_epochs += 1
    stop = patience > 0 and value is not None and bad_epochs >= patience
    every = tc.get('checkpoint_every', 1)
    if (checkpoint_dir and jax.process_index() == 0 and every and
        ((epoch + 1) % every == 0 or epoch + 1 == tc.epochs or stop)):
      arrays = {f'state_{i}': distributed.local_value(leaf)
                for i, leaf in enumerate(jax.tree_util.tree_leaves(state))}
      if best is not None:
        arrays.update(best_W=best.W, best_b=best.b)
      checkpoint.save(checkpoint_dir, epoch + 1, arrays, dict(
          fingerprint=json_safe(fingerprint), history=history,
          best_epoch=best_epoch, best_value=best_value,
          bad_epochs=bad_epochs))
    if stop:
      logging.info('Early stopping after epoch %d (best %d).', epoch + 1,
                   best_epoch)
      break
  final = state_params(state)
  if patience > 0 and best is not None:
    final = Params(np.asarray(best.W, np.float32),
                   np.asarray(best.b, np.float32))
  else:
    best_epoch = len(history)
  return FitResult(params=final, history=history, best_epoch=best_epoch,
                   epochs_run=len(history), compile_seconds=compile_seconds,
                   train_seconds=train_seconds,
                   update='sparse' if spec.sparse else 'dense',
                   pack_seconds=pack_seconds)


def json_safe(obj):
  """Round-trips ``obj`` through JSON (tuples -> lists) for comparisons."""
  import json
  return json.loads(json.dumps(obj))