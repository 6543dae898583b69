"""The one run loop that `training.fit` and `hyper_sweep.sweep` share.

Shapes: N documents, F features, C classes; G steps per epoch, K steps per
call of the compiled chunk, M models (a sweep's leading hyperparameter axis;
a plain fit trains one model with no such axis).

A run is:

1. `prepare`: check the labels, make the step's static `Spec`, pack the
   corpus ONCE into fixed-shape steps (linjax/engine/packing.py), build the
   initial training state (M copies for a sweep), and get the compiled chunk
   program (linjax/engine/chunk_program.py; cached, or compiled in the
   background by `training.precompile`). For a sweep the same program is
   vmapped over the leading axis of the states and of the (learning rate,
   l2) pairs: M models share every packed step, one compilation, one read
   of the data per step.
2. `epochs`: each epoch visits the packed steps in the seeded host order
   (`step_order.batch_order`), K steps per call, and yields its step losses.
3. `validation_metrics`: scores the validation split straight from a state
   (W = scale * V), for one model or model ``m`` of a sweep.

What differs between a fit and a sweep (early stopping and checkpoints for a
fit, choosing the best model for a sweep) stays in their own modules.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import losses
from linjax.core import model
from linjax.engine import chunk_program
from linjax.engine import distributed
from linjax.engine import host_memory
from linjax.engine import packing
from linjax.engine import scoring
from linjax.engine import spill
from linjax.engine import step as step_lib
from linjax.engine import step_order
from linjax.engine import step_split
from linjax.engine import traced_schedule
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.csr import CsrFeatures

Params = model.Params


def check_labels(y, n: int, num_classes: int, name: str,
                 loss='softmax') -> np.ndarray:
  """The labels ``loss`` trains on, or ValueError naming ``name``.

  The loss's label kind (linjax/core/losses.py) decides: one class per
  document, int32 [n] in [0, num_classes); or multi-label (e.g. 'sigmoid'),
  a multi-hot [n, num_classes] of 0/1 (any numeric dtype), as uint8.
  """
  check_loss(np.asarray(y), loss, name)
  y = np.asarray(y)
  if losses.get_loss(loss).multi_label:
    return check_multi_hot(y, n, num_classes, name)
  if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f'{name}: expected int labels of shape [{n}], got '
                     f'{y.dtype} {y.shape}.')
  if y.size and (y.min() < 0 or y.max() >= num_classes):
    raise ValueError(f'{name}: labels must lie in [0, {num_classes}), found '
                     f'{y.min()}..{y.max()}.')
  return y.astype(np.int32)


def check_multi_hot(y, n: int, num_classes: int, name: str) -> np.ndarray:
  """uint8 [n, num_classes] of a multi-hot ``y`` in {0, 1}, or ValueError."""
  y = np.asarray(y)
  if y.shape != (n, num_classes) or not (
      np.issubdtype(y.dtype, np.number) or y.dtype == bool):
    raise ValueError(f'{name}: expected multi-hot labels of shape [{n}, '
                     f'{num_classes}], got {y.dtype} {y.shape}.')
  bad = (y != 0) & (y != 1)
  if bad.any():
    i, c = np.argwhere(bad)[0]
    raise ValueError(f'{name}: multi-hot labels must be 0 or 1, found '
                     f'{y[i, c]} at [{i}, {c}].')
  return y.astype(np.uint8)


def check_loss(y: np.ndarray, loss, name: str) -> None:
  """ValueError unless the labels' rank fits the label kind of ``loss``."""
  spec = losses.get_loss(loss)
  if spec.multi_label and y.ndim != 2:
    raise ValueError(f'{name}: train.loss={spec.name!r} (multi-label) needs '
                     f'multi-hot labels [N, C], got shape {y.shape}; encode '
                     'label sets with LabelMap.encode_multi.')
  if not spec.multi_label and y.ndim == 2:
    raise ValueError(f"{name}: multi-hot labels [N, C] need train.loss="
                     f"'sigmoid' (or another multi-label loss), not "
                     f'{spec.name!r}.')


def document_weights(y: np.ndarray, num_classes: int, class_weight: str,
                     sample_weight=None) -> np.ndarray | None:
  """float32 [N] weights of the documents in the loss, or None (all 1).

  ``sample_weight`` [N] (finite, >= 0) times, with ``class_weight``
  'balanced', ``N / (classes present * count of the document's class)``
  counted over all processes (scikit-learn's rule).
  """
  weights = None
  if sample_weight is not None:
    weights = np.asarray(sample_weight, np.float64)
    if weights.shape != y.shape[:1]:
      raise ValueError(f'sample_weight: expected shape {y.shape[:1]}, got '
                       f'{weights.shape}.')
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
      raise ValueError('sample_weight: weights must be finite and >= 0.')
  if class_weight == 'balanced':
    counts = distributed.all_sum(np.bincount(y, minlength=num_classes))
    present = counts > 0
    per_class = np.where(present, counts.sum() / (
        present.sum() * np.maximum(counts, 1)), 0.0)
    weights = per_class[y] if weights is None else weights * per_class[y]
  if weights is not None and not distributed.all_sum([weights.sum()])[0] > 0:
    raise ValueError('sample_weight: every document has weight 0.')
  return None if weights is None else weights.astype(np.float32)


def better(metric: str, value: float, best: float | None) -> bool:
  """Whether ``value`` of validation ``metric`` improves on ``best``."""
  if best is None:
    return True
  return value > best if metric == 'accuracy' else value < best


def mesh_and_shards(mesh, num_shards):
  """(mesh, S): the data-parallel mesh (default: all devices when there are
  several) and the sub-batches per step (default: one per device)."""
  if mesh is None:
    mesh = distributed.default_mesh()
  num_devices = mesh.size if mesh is not None else 1
  num_shards = int(num_shards or num_devices)
  if num_shards % num_devices:
    raise ValueError(f'num_shards={num_shards} must be a multiple of the '
                     f'{num_devices} devices.')
  return mesh, num_shards


def _split_plan(train_x: CsrFeatures, training: TrainOptions,
                spec: step_lib.Spec):
  """(the 1-device steps split S ways, this process's first document index).

  Only the documents' entry counts travel between processes.
  """
  lengths, bounds = distributed.all_concat(
      train_x.row_lengths().astype(np.int32))
  plan = step_split.split_plan(lengths, bounds, spec.num_shards,
                               token_budget=training.token_budget,
                               max_docs=training.batch_size,
                               seed=training.seed)
  return plan, int(bounds[jax.process_index()])


def pack_steps(train_x: CsrFeatures, y: np.ndarray, training: TrainOptions,
               spec: step_lib.Spec, num_local: int, offset: int,
               sample_weight: np.ndarray | None = None
               ) -> packing.PackedBatches:
  """This process's packed steps, with shapes every process agrees on.

  One sub-batch per step (S = 1): `packing.pack`, the steps of the run.
  Several (devices or processes): the SAME global steps, each split into
  S = ``spec.num_shards`` sub-batches (linjax/engine/step_split.py); this
  process feeds ``num_local`` of them from ``offset`` on. The corpus is the
  processes' shards one after another in process order, so only their
  documents' entry counts travel between processes, not their features.
  """
  if spec.num_shards == 1:
    # A data-independent row width, as `training.precompile` assumes.
    rows = packing.dedupe_width(training.token_budget) if spec.dedupe else 0
    return packing.pack(train_x, y, token_budget=training.token_budget,
                        max_docs=training.batch_size, seed=training.seed,
                        dedupe=spec.dedupe, min_rows=rows,
                        sample_weight=sample_weight)
  plan, first_doc = _split_plan(train_x, training, spec)
  return step_split.pack_split(
      train_x, y, plan, first_doc=first_doc, first_shard=offset,
      num_local=num_local, sample_weight=sample_weight)


SPILL_CHUNK_SLOTS = 1 << 21   # ~40 MB of packed slots per spilled chunk


def step_chunks(train_x: CsrFeatures, y: np.ndarray, training: TrainOptions,
                spec: step_lib.Spec, num_local: int, offset: int,
                sample_weight: np.ndarray | None = None,
                chunk_steps: int = 2048):
  """`pack_steps`' steps, ``chunk_steps`` at a time (for `spill`), fewer
  when the steps are wide: a chunk holds at most `SPILL_CHUNK_SLOTS` slots
  (manpages x4 out of core, T = 8192: 2048 steps a chunk were +250 MB, the
  run's peak; the steps written are the same whatever the chunks)."""
  chunk_steps = max(1, min(int(chunk_steps),
                           SPILL_CHUNK_SLOTS // max(training.token_budget, 1)))
  if spec.num_shards == 1:
    rows = packing.dedupe_width(training.token_budget) if spec.dedupe else 0
    return packing.pack_chunks(
        train_x, y, token_budget=training.token_budget,
        max_docs=training.batch_size, seed=training.seed, dedupe=spec.dedupe,
        min_rows=rows, sample_weight=sample_weight, chunk_steps=chunk_steps)
  plan, first_doc = _split_plan(train_x, training, spec)
  return step_split.pack_split_chunks(
      train_x, y, plan, first_doc=first_doc, first_shard=offset,
      num_local=num_local, sample_weight=sample_weight,
      chunk_steps=chunk_steps)


def spills(train_x: CsrFeatures, y: np.ndarray, training: TrainOptions,
           spec: step_lib.Spec) -> bool:
  """Whether this process's packed steps would exceed its memory budget
  (``training.max_host_mb``, see linjax/engine/spill.py)."""
  need = spill.estimate_bytes(
      train_x.num_docs, train_x.nnz, training.token_budget,
      training.batch_size, spec.dedupe or spec.num_shards > 1,
      y.shape[1] if y.ndim == 2 else 1)
  return need > spill.budget_bytes(training.max_host_mb)


@dataclasses.dataclass
class Run:
  """A prepared run: what `epochs` needs, and what it has measured.

  ``state`` is the training state (host arrays until the first epoch, with
  a leading [M] axis for a sweep); ``hyper`` the traced (learning rate, l2),
  scalars or [M]; ``nnz`` the feature slots of one epoch over all processes;
  ``store`` the spilled steps (linjax/engine/spill.py) or None (in memory).
  """

  spec: step_lib.Spec
  training: TrainOptions
  packed: packing.PackedBatches
  batches: packing.PackedBatches
  fn: object
  state: step_lib.TrainState
  hyper: tuple
  sched: np.ndarray
  mesh: object
  nnz: float
  compile_seconds: float
  pack_seconds: float
  placed: bool = False
  store: spill.SpilledSteps | None = None


def prepare(train_x: CsrFeatures, y: np.ndarray, num_classes: int,
            optimizer: OptimizerOptions, training: TrainOptions, *,
            learning_rates=None, l2s=None, init: Params | None = None,
            mesh=None, num_shards: int | None = None,
            data_parallel: bool = True, sample_weight=None) -> Run:
  """Packs the corpus, builds the state and gets the compiled program.

  Args:
    train_x: CsrFeatures [N, F] (this process's shard when multi-process).
    y: int32 [N] labels, or uint8 [N, C] multi-hot for a multi-label
      ``training.loss``, checked by `check_labels`.
    num_classes: C.
    optimizer, training: the options (``learning_rate``/``l2`` are replaced
      by ``learning_rates``/``l2s`` for a sweep).
    learning_rates, l2s: float [M] each, for M models trained side by side
      (a sweep); None: one model with the options' values.
    init: initial Params (default zeros), shared by every model.
    mesh, num_shards: data parallelism (see `mesh_and_shards`).
    data_parallel: False keeps the run on one device (sweeps).
    sample_weight: float [N] weights of the documents in the loss, or None
      (see `document_weights`).

  Returns:
    Run.
  """
  vmapped = learning_rates is not None
  check_loss(np.asarray(y), training.loss, 'train_y')
  F = train_x.num_features
  if data_parallel:
    mesh, num_shards = mesh_and_shards(mesh, num_shards)
  else:
    mesh, num_shards = None, 1
  num_local = num_shards // jax.process_count()
  offset = jax.process_index() * num_local
  l2_nonzero = (bool(np.any(np.asarray(l2s) > 0)) if vmapped else None)
  spec = step_lib.make_spec(optimizer, training, F, num_classes, 0,
                            num_shards, mesh is not None,
                            l2_nonzero=l2_nonzero)
  # Featurisation's freed temporaries go back to the OS before W is made.
  host_memory.trim()
  start = time.perf_counter()
  store = None
  if spills(train_x, y, training, spec):
    store = spill.spill_steps(step_chunks(train_x, y, training, spec,
                                          num_local, offset, sample_weight))
    packed = store.batches
  else:
    packed = pack_steps(train_x, y, training, spec, num_local, offset,
                        sample_weight)
  host_memory.trim()   # packing's temporaries (healthtweets: ~35 MB)
  # precompile's estimate of the longest document may exceed what fit finds
  # (min_df prunes after the estimate): pad to its width (exact).
  hint = chunk_program.WIDTH_HINTS.get((spec, mesh), 0)
  if (spec.num_shards == 1 and store is None and
      packed.token_budget < hint <= 2 * packed.token_budget):
    packed = packing.pad_width(packed, hint, F)
  pack_seconds = time.perf_counter() - start
  if spec.num_shards > 1:  # the 1-device step the split step is rebuilt in
    longest = distributed.all_max([train_x.row_lengths().max(initial=0)])[0]
    spec = dataclasses.replace(
        spec, step_slots=packing.slot_budget(training.token_budget,
                                             int(longest)),
        step_docs=training.batch_size)
  if vmapped:
    hyper = (np.asarray(learning_rates, np.float32),
             np.asarray(l2s, np.float32))
  else:
    hyper = (np.float32(optimizer.learning_rate), np.float32(training.l2))
  spec = step_lib.with_steps(spec, packed.num_steps * training.epochs,
                             float(np.max(hyper[0])), float(np.max(hyper[1])))
  nnz = float(distributed.all_sum([train_x.nnz])[0])
  if init is None:
    init = Params(np.zeros((F, num_classes), np.float32),
                  np.zeros(num_classes, np.float32))
  state = step_lib.init_state(spec, init)
  if vmapped:
    m = hyper[0].shape[0]
    state = jax.tree_util.tree_map(
        lambda a: jnp.broadcast_to(a, (m,) + np.shape(a)).copy(), state)
  args = chunk_program.abstract_args(
      spec, training.steps_per_call, packed.token_budget,
      packed.uids.shape[-1], packed.mask.shape[-1], mesh)
  if vmapped:
    args = (state,) + args[1:2] + (hyper,) + args[3:]
  fn, compile_seconds = chunk_program.compiled_chunk(spec, args, mesh,
                                                     vmapped=vmapped)
  return Run(spec=spec, training=training, packed=packed,
             batches=packed.device_arrays(), fn=fn, state=state, hyper=hyper,
             sched=traced_schedule.schedule_args(spec), mesh=mesh, nnz=nnz,
             compile_seconds=compile_seconds, pack_seconds=pack_seconds,
             store=store)


def epochs(run: Run, first: int = 0) -> Iterator[tuple[int, np.ndarray,
                                                       float]]:
  """Trains epochs ``first .. training.epochs - 1``, updating ``run.state``.

  Yields:
    (epoch index, step losses float32 [G] or [M, G] in visiting order,
    seconds the epoch took). A consumer may stop early (early stopping).
  """
  if not run.placed and run.mesh is not None:
    run.state, run.hyper, run.sched = distributed.replicate(
        (run.state, run.hyper, run.sched), run.mesh)
  run.placed = True
  for epoch in range(first, run.training.epochs):
    start = time.perf_counter()
    run.state, step_losses = chunk_program.run_epoch(
        run.fn, run.state, run.batches, run.hyper, run.sched,
        step_order.batch_order(run.training.seed, epoch, run.packed.num_steps),
        run.spec, run.training.steps_per_call, run.mesh,
        gather=None if run.store is None else functools.partial(
            run.store.gather, num_features=run.spec.num_features))
    yield epoch, step_losses, time.perf_counter() - start


def release(run: Run) -> None:
  """Drops a finished run's packed steps and state, and trims the heap.

  Call it once the trained params are taken out (`step.state_params`): the
  packed steps and the chunk buffers (healthtweets ~20 MB, manpages ~35 MB)
  then leave the resident set before the caller scores or featurises more,
  where the peak RSS of a fit-then-predict process used to be.
  """
  run.packed = run.batches = run.store = run.state = None
  host_memory.trim()


def validation_metrics(state: step_lib.TrainState, val_x: CsrFeatures,
                       val_y: np.ndarray, model_index: int | None = None,
                       batch_size: int = 4096, loss='softmax') -> dict:
  """dict(loss, accuracy) on the validation split, over all processes.

  ``model_index`` picks model m of a sweep's state (None: a single model).
  ``loss``: the loss that trains (``run.spec.loss``, its settings bound),
  whose mean is the validation loss; with a multi-label loss the accuracy
  is P@1 (`scoring.loss_and_accuracy`; over the documents with a label).
  """
  V, scale, b = state.V, state.scale, state.b
  if model_index is not None:
    V, scale, b = V[model_index], scale[model_index], b[model_index]
  else:
    V, scale, b = (distributed.local_array(a) for a in (V, scale, b))
  z = scoring.logits_scaled(V, scale, b, val_x, batch_size)
  # A process may hold no validation document (its loss is then NaN).
  return scoring.over_processes(scoring.loss_and_accuracy(z, val_y, loss),
                                val_x.num_docs)
