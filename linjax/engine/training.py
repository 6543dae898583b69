"""Training: `fit` trains softmax regression with the compiled step loop.

Shapes: N documents, F features, C classes.

`fit(train_x, train_y, num_classes, optimizer=OptimizerOptions(),
training=TrainOptions())` runs the shared loop of linjax/engine/run_loop.py
(pack the corpus ONCE into fixed-shape steps, compile a chunk of
``training.steps_per_call`` steps, run ``training.epochs`` epochs of
host-ordered chunks) and scores the validation split after each epoch. The
chunk's shapes do not depend on the data beyond F and C, so `precompile` can
compile it while the host featurises. For example::

  featurizer = linjax.text.Featurizer()
  x = featurizer.fit_transform(texts)
  result = fit(x, labels, num_classes,
               optimizer=OptimizerOptions(learning_rate=28.0),
               training=TrainOptions(epochs=4))
  probabilities = scoring.predict_proba(result.params, featurizer.transform(
      new_texts))

* Rules from the data (`run_options`): with ``training.docs_per_step`` the
  slot budget T grows with the mean document length, so a step of long
  documents averages over about as many documents as one of short ones;
  with ``training.max_steps`` a large corpus takes fewer passes than
  ``training.epochs``. `FitResult` reports the T, steps and passes run.
* Early stopping: with ``training.patience`` > 0 and a validation split, the
  best epoch's params (by ``training.metric``) are returned.
* Checkpoints: every ``training.checkpoint_every`` epochs, once
  ``training.checkpoint_seconds`` have passed since the last, into
  ``checkpoint_dir`` (linjax/engine/checkpoint.py); a later call resumes from
  the latest one, provided it came from the same options and data (a
  fingerprint is checked).
* Divergence: the loop returns every step's loss; a non-finite one raises
  `TrainingDiverged` naming the first bad epoch and step; the last good
  checkpoint is left in place.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import model
from linjax.engine import checkpoint
from linjax.engine import chunk_program
from linjax.engine import distributed
from linjax.engine import packing
from linjax.engine import run_loop
from linjax.engine import step as step_lib
from linjax.engine.options import check_decay
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.csr import CsrFeatures
from linjax.text.csr_store import CsrStore

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
  """What `fit` returns; params are float32 numpy arrays.

  compile_seconds: what fit spent compiling, or waiting for a compile
  started by `precompile` (0 when it was ready). token_budget: the slot
  budget T of the run's steps; steps: the steps of one epoch.
  """

  params: Params
  history: list
  best_epoch: int
  epochs_run: int
  compile_seconds: float
  train_seconds: float
  update: str
  pack_seconds: float = 0.0
  token_budget: int = 0
  steps: int = 0


def step_budget(training: TrainOptions, mean_doc_features: float) -> int:
  """The slot budget T before the longest document's raise.

  ``training.token_budget``; with ``training.docs_per_step`` = k > 0, if
  that holds fewer than k documents of the mean length, k such documents
  rounded up to a power of two (so an estimate of the mean made before
  featurisation, `precompile`'s, usually lands on the same T): an average
  step then holds k to 2k documents (at most ``training.batch_size``)
  however long the documents are.

  Args:
    training: the options.
    mean_doc_features: the corpus's mean number of entries per document (0:
      unknown, T is ``token_budget``).

  Returns:
    T, an int >= ``training.token_budget``.
  """
  k = min(training.docs_per_step, training.batch_size)
  want = k * mean_doc_features
  if k <= 0 or not want > training.token_budget:
    return training.token_budget
  return 1 << math.ceil(math.log2(want))


def run_epochs(training: TrainOptions, num_docs: int, nnz: int,
               token_budget: int) -> int:
  """Passes `fit` makes: ``training.epochs``, or fewer by ``max_steps``.

  Args:
    training: the options.
    num_docs, nnz: N documents and their stored entries (all processes).
    token_budget: T of the run's steps.

  Returns:
    ``min(epochs, ceil(max_steps / steps))`` (at least 1), where a pass
    counts ``steps = max(N / batch_size, nnz / T)``, the fewest its packing
    can take; ``epochs`` with ``max_steps`` 0.
  """
  if training.max_steps <= 0 or num_docs <= 0:
    return training.epochs
  steps = max(num_docs / training.batch_size, nnz / token_budget)
  return max(1, min(training.epochs, math.ceil(training.max_steps / steps)))


def run_options(train_x: CsrFeatures, training: TrainOptions) -> TrainOptions:
  """The options `fit` runs on ``train_x``: its data's rules applied.

  ``token_budget`` becomes `step_budget` of the mean document length
  (``docs_per_step``) and ``epochs`` `run_epochs` (``max_steps``). Counts
  are over every process's documents, so all processes agree.
  """
  if training.docs_per_step <= 0 and training.max_steps <= 0:
    return training
  num_docs, nnz = distributed.all_sum([train_x.num_docs, train_x.nnz])
  budget = step_budget(training, nnz / max(num_docs, 1.0))
  longest = distributed.all_max([train_x.row_lengths().max(initial=0)])[0]
  epochs = run_epochs(training, int(num_docs), int(nnz),
                      packing.slot_budget(budget, int(longest)))
  if budget != training.token_budget:
    logging.info('train.docs_per_step=%d: token budget %d instead of %d '
                 '(documents of %.0f features on average).',
                 training.docs_per_step, budget, training.token_budget,
                 nnz / max(num_docs, 1.0))
  if epochs != training.epochs:
    logging.info('train.max_steps=%d: %d passes instead of train.epochs=%d.',
                 training.max_steps, epochs, training.epochs)
  return dataclasses.replace(training, token_budget=budget, epochs=epochs)


def precompile(num_features: int, num_classes: int, *,
               optimizer: OptimizerOptions = OptimizerOptions(),
               training: TrainOptions = TrainOptions(),
               background: bool = True, mesh=None,
               num_shards: int | None = None, max_doc_features: int = 0,
               mean_doc_features: float = 0.0):
  """Starts compiling the program a later `fit` with these arguments runs.

  The program does not depend on the data beyond F and C (see
  linjax/engine/step.py), so it can be compiled while the host featurises:
  XLA's compiler releases the GIL. `fit` then finds it in the compile cache,
  or waits for the compile in flight instead of starting its own. If the
  data turn out to need another program (a document longer than
  ``training.token_budget``, or a run long enough that the global scale must
  be checked), `fit` compiles that one as usual.

  Args:
    num_features: F (known before featurisation in hashing mode).
    num_classes: C.
    optimizer, training: the options `fit` will get.
    background: compile in a daemon thread (False: here, now).
    mesh, num_shards: as for `fit`.
    max_doc_features: the longest training document's number of features,
      if known or estimated (0: assume it fits ``training.token_budget``);
      `fit` raises the budget T to it, rounded up to 8
      (linjax/engine/packing.py).
    mean_doc_features: the mean number of features per training document,
      if known or estimated (0: unknown); with ``training.docs_per_step``
      `fit` raises T by it (`step_budget`).

  Returns:
    A `concurrent.futures.Future` of the compiled program (its result is
    rarely needed: `fit` waits by itself); of None with several sub-batches
    per step (devices or processes), whose widths `fit` finds in the data
    (linjax/engine/step_split.py).
  """
  check_decay(optimizer, training.l2)
  mesh, num_shards = run_loop.mesh_and_shards(mesh, num_shards)
  if num_shards > 1:  # a split step's widths depend on the data: fit compiles
    done = concurrent.futures.Future()
    done.set_result(None)
    return done
  spec = step_lib.make_spec(optimizer, training, int(num_features),
                            int(num_classes), 0, num_shards, mesh is not None)
  budget = packing.slot_budget(step_budget(training, mean_doc_features),
                               max_doc_features)
  rows = packing.dedupe_width(budget) if spec.dedupe else budget
  args = chunk_program.abstract_args(spec, training.steps_per_call, budget,
                                     rows, training.batch_size, mesh)
  if budget > training.token_budget:
    chunk_program.WIDTH_HINTS[(spec, mesh)] = budget
  return chunk_program.compile_async(spec, args, mesh, background=background)


def _fingerprint(optimizer: OptimizerOptions, training: TrainOptions,
                 x: CsrFeatures, num_classes: int, spec: step_lib.Spec,
                 weights: np.ndarray | None):
  """What a checkpoint must match to be resumed (not the loop's knobs that
  leave the trained model unchanged).

  Counts and weights are those of every process's documents, and the
  number of devices or processes is left out: the global steps, hence the
  model, do not depend on it (linjax/engine/step_split.py), so a run
  resumes on another number of devices or processes, and every process of
  a run computes the same fingerprint.
  """
  train = {k: v for k, v in dataclasses.asdict(training).items()
           if k not in ('patience', 'checkpoint_every', 'checkpoint_seconds',
                        'steps_per_call', 'max_host_mb')}
  num_docs, nnz = distributed.all_sum([x.num_docs, x.nnz])
  if weights is not None:
    weights = distributed.all_concat(weights)[0]
  return json_safe(dict(
      optimizer=dataclasses.asdict(optimizer), train=train,
      num_features=x.num_features, num_classes=num_classes,
      num_docs=int(num_docs), nnz=int(nnz),
      weights=None if weights is None else hashlib.sha256(
          weights.tobytes()).hexdigest(),
      update='sparse' if spec.sparse else 'dense'))


def _restore(run: run_loop.Run, checkpoint_dir: str, fingerprint) -> dict:
  """Loads the latest checkpoint into ``run.state``; the loop's bookkeeping."""
  first, arrays, meta = checkpoint.load(checkpoint_dir)
  if meta['fingerprint'] != fingerprint:
    raise checkpoint.CheckpointError(
        f'{checkpoint_dir}: its checkpoints come from another config or '
        f'data set; use a fresh checkpoint_dir.')
  leaves, treedef = jax.tree_util.tree_flatten(run.state)
  run.state = jax.tree_util.tree_unflatten(
      treedef, [jnp.asarray(arrays[f'state_{i}']) for i in range(len(leaves))])
  best = (Params(arrays['best_W'], arrays['best_b']) if 'best_W' in arrays
          else None)
  logging.info('Resuming from %s at epoch %d.', checkpoint_dir, first)
  return dict(first=first, history=meta['history'],
              best_epoch=meta['best_epoch'], best_value=meta['best_value'],
              bad_epochs=meta['bad_epochs'], best=best)


def fit(train_x: CsrFeatures, train_y, num_classes: int, *,
        optimizer: OptimizerOptions = OptimizerOptions(),
        training: TrainOptions = TrainOptions(),
        val_x: CsrFeatures | None = None, val_y=None,
        callback: Callable[[dict], bool | None] | None = None,
        checkpoint_dir: str | None = None, init: Params | None = None,
        mesh=None, num_shards: int | None = None,
        sample_weight=None) -> FitResult:
  """Trains softmax regression.

  Args:
    train_x: CsrFeatures [N documents, F features] (this process's shard in
      multi-process training), or a `CsrStore` of them on disk (one
      process, one sub-batch per step: the runner's out-of-core path).
    train_y: int [N] labels in [0, num_classes).
    num_classes: C.
    optimizer: OptimizerOptions (optax optimiser and schedule).
    training: TrainOptions (batches, epochs, l2, seed, early stopping, ...).
    val_x, val_y: optional validation split for per-epoch metrics and early
      stopping (``training.patience`` > 0 restores the best epoch's params).
    callback: called with each epoch's history record; returning True
      stops the training after that epoch (a convergence rule of the
      caller's, e.g. `LinjaxClassifier`'s ``tol``).
    checkpoint_dir: write a checkpoint every ``training.checkpoint_every``
      epochs (at least ``training.checkpoint_seconds`` apart) and resume
      from the latest one found there.
    init: initial Params (default zeros).
    mesh: a 1-D 'batch' mesh for data parallelism (default: all devices when
      there are several, see linjax/engine/distributed.py).
    num_shards: sub-batches per step (default: the mesh size, or 1).
    sample_weight: float [N] >= 0, each document's weight in the loss
      (scikit-learn's SGDClassifier semantics: the batch loss is the weighted
      sum over the number of documents, those of weight 0 included),
      combined with ``training.class_weight``.

  Returns:
    FitResult.
  """
  check_decay(optimizer, training.l2)
  train_x.validate('train_x')
  y = run_loop.check_labels(train_y, train_x.num_docs, num_classes, 'train_y',
                           training.loss)
  if val_x is not None:
    val_x.validate('val_x')
    val_y = run_loop.check_labels(val_y, val_x.num_docs, num_classes, 'val_y',
                                  training.loss)
  training = run_options(train_x, training)
  if isinstance(train_x, CsrStore):
    # Features on disk: packed steps go to disk too (a corpus under 1 MiB
    # of steps is packed in memory, having been read whole).
    training = dataclasses.replace(training, max_host_mb=1)
  weights = run_loop.document_weights(y, num_classes, training.class_weight,
                                     sample_weight)
  if weights is not None:
    # The step counts a document in the batch mean where its weight is > 0
    # (0 marks padding). A weight-0 document still counts, as in
    # scikit-learn's SGDClassifier: the smallest normal float32 stands for 0
    # (its products with losses and gradients vanish below float32's
    # resolution).
    weights = np.maximum(weights, np.finfo(np.float32).tiny)
  run = run_loop.prepare(train_x, y, num_classes, optimizer, training,
                         init=init, mesh=mesh, num_shards=num_shards,
                         sample_weight=weights)
  loop = dict(first=0, history=[], best_epoch=0, best_value=None,
              bad_epochs=0, best=None)
  fingerprint = _fingerprint(optimizer, training, train_x, num_classes,
                             run.spec, weights)
  if checkpoint_dir and checkpoint.latest_epoch(checkpoint_dir) is not None:
    loop = _restore(run, checkpoint_dir, fingerprint)
  history, best = loop['history'], loop['best']
  best_value, best_epoch = loop['best_value'], loop['best_epoch']
  bad_epochs = loop['bad_epochs']
  metric, patience = training.metric, training.patience
  train_seconds = 0.0
  last_saved = time.perf_counter()
  for epoch, step_losses, seconds in run_loop.epochs(run, loop['first']):
    train_seconds += seconds
    bad = np.flatnonzero(~np.isfinite(step_losses))
    if bad.size:
      raise TrainingDiverged(epoch + 1, int(bad[0]) + 1,
                             float(step_losses[bad[0]]),
                             optimizer.learning_rate)
    record = dict(epoch=epoch + 1, train_loss=float(step_losses.mean()),
                  val_loss=None, val_accuracy=None,
                  tokens_per_s=run.nnz / seconds, seconds=seconds)
    value = None
    if val_x is not None:
      m = run_loop.validation_metrics(run.state, val_x, val_y,
                                      loss=run.spec.loss)
      record['val_loss'], record['val_accuracy'] = m['loss'], m['accuracy']
      value = record['val_' + metric]
    history.append(record)
    asked_to_stop = callback is not None and callback(dict(record)) is True
    if value is not None and run_loop.better(metric, value, best_value):
      best_value, best_epoch, bad_epochs = value, epoch + 1, 0
      if patience > 0:
        best = step_lib.state_params(run.state)
    elif value is not None:
      bad_epochs += 1
    stop = asked_to_stop or (patience > 0 and value is not None and
                             bad_epochs >= patience)
    every = training.checkpoint_every
    if (checkpoint_dir and jax.process_index() == 0 and every and
        ((epoch + 1) % every == 0 or epoch + 1 == training.epochs or stop) and
        time.perf_counter() - last_saved >= training.checkpoint_seconds):
      arrays = {f'state_{i}': distributed.local_value(leaf)
                for i, leaf in enumerate(jax.tree_util.tree_leaves(run.state))}
      if best is not None:
        arrays.update(best_W=best.W, best_b=best.b)
      checkpoint.save(checkpoint_dir, epoch + 1, arrays, dict(
          fingerprint=fingerprint, history=history,
          best_epoch=best_epoch, best_value=best_value,
          bad_epochs=bad_epochs))
      last_saved = time.perf_counter()
    if stop:
      if not asked_to_stop:
        logging.info('Early stopping after epoch %d (best %d).', epoch + 1,
                     best_epoch)
      break
  final = step_lib.state_params(run.state)
  if patience > 0 and best is not None:
    final = Params(np.asarray(best.W, np.float32),
                   np.asarray(best.b, np.float32))
  else:
    best_epoch = len(history)
  result = FitResult(params=final, history=history, best_epoch=best_epoch,
                     epochs_run=len(history),
                     compile_seconds=run.compile_seconds,
                     train_seconds=train_seconds,
                     update='sparse' if run.spec.sparse else 'dense',
                     pack_seconds=run.pack_seconds,
                     token_budget=run.packed.token_budget,
                     steps=run.packed.num_steps)
  run_loop.release(run)   # packed steps back to the OS before scoring
  return result


def json_safe(obj):
  """Round-trips ``obj`` through JSON (tuples -> lists) for comparisons."""
  return json.loads(json.dumps(obj))
