"""The compiled training step: sparse row updates, L2 scale, schedule shape.

Shapes: N documents, F features, C classes; G steps per epoch, K steps per
call, S sub-batches per step, T slots and D documents per sub-batch, U rows
per sub-batch.

* Data: `packing.pack` lays the corpus out ONCE per run in fixed-shape steps
  (linjax/engine/packing.py); the host draws each epoch's step order from
  (seed, epoch) (`step_order.batch_order`). The compiled chunk of K steps,
  its cache and the host-side feeding are in linjax/engine/chunk_program.py;
  the schedule's traced lengths in linjax/engine/traced_schedule.py.
* Sparse path (``train.update_path`` sparse, or auto with F > 4096): gather the
  rows W[uids] a step touches, differentiate the batch loss w.r.t. those rows
  and b only, run the optax direction (clip, the optimiser's element-wise
  transformation from linjax/engine/optimizers.py's table) on the
  [U, C] slices, scatter-add the step. Cost per step is O(U C), not O(F C).
  Stateful optimisers keep per-row state and update only touched rows (lazy;
  exact for Adagrad, an approximation for Adam, momentum, Lion: the row
  state is every optax state leaf shaped like W).
* Dense path: `jax.grad` over the full Params and a full update; for small F.
* L2 and weight decay in the sparse path: W is stored as ``scale * V`` with a
  global scalar (as scikit-learn's SGD does). The decay part of a step,
  ``W <- (1 - lr_t * decay) W``, only changes ``scale``; the gradient step is
  scattered into V divided by the new scale. This is exact for decoupled
  weight decay (any optimiser) and for the L2 penalty with plain SGD (no
  momentum, no clipping), where the penalty's gradient 2 l2 W is exactly such
  a decay. With a preconditioner or clipping the penalty gradient must go
  through them, so there ``2 l2 W_rows`` is added to the touched rows only
  (lazy L2: untouched rows are not shrunk that step). V absorbs the scale
  when it falls under 1e-6 (checked only if the run could get there). The
  dense path always uses the exact penalty.
* The scan returns every step's loss; `train.fit` checks them for divergence.
* Loss (``train.loss``, `Spec.loss`: its entry in the table of
  linjax/core/losses.py, options such as label smoothing bound): labels int
  [D] per sub-batch, or a multi-hot uint8 [D, C] for a multi-label loss
  (the entry's label kind); the per-document score gradient from the entry
  (`losses.Loss.value_and_score_grad`: `jax.vjp` of its function, or the
  hand-derived ``p - onehot(y)`` / ``sigmoid(z) - Y`` of softmax and
  sigmoid). Nothing here knows a loss by name; everything after the score
  gradient (rows, optimiser, L2, scale, data parallelism) is shared.
* Data parallel (linjax/engine/distributed.py): with a mesh, the epoch runs
  under `shard_map`; a step of S sub-batches (linjax/engine/step_split.py)
  gives each device its own. Sparse path: each device computes its slots'
  gradients and its documents' scores, all-gathers everyone's, puts them
  back in the 1-device order (`one_device_step.layout`) and sums duplicate rows,
  the loss and the bias gradient exactly as one device would, then applies
  the same update: the model of S devices is the 1-device model, bit for bit
  (Adam's longer update may round differently). Dense path: every device
  all-gathers the sub-batches' inputs, rebuilds the 1-device step
  (`one_device_step.dense_batch`) and runs the 1-device gradient on it, no
  psum: the same numbers as 1 device (a psum rounds differently, and at large
  learning rates that grows over the run).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import losses
from linjax.core import model
from linjax.core.features import gather_padded_rows
from linjax.engine import distributed
from linjax.engine import one_device_step
from linjax.engine import optimizers as optim
from linjax.engine import traced_schedule
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.engine.options import train_loss

Params = model.Params
DENSE_MAX_FEATURES = 4096
_RESCALE_BELOW = 1e-6


def choose_update(mode: str, num_features: int) -> str:
  """'sparse' or 'dense' from ``TrainOptions.update_path`` (auto: dense for F <=
  4096)."""
  if mode == 'auto':
    return 'dense' if num_features <= DENSE_MAX_FEATURES else 'sparse'
  return mode


class TrainState(NamedTuple):
  """W = scale * V (V [F, C], scale []), b [C], optax state, step count []."""

  V: jax.Array
  scale: jax.Array
  b: jax.Array
  opt_state: Any
  step: jax.Array


@dataclasses.dataclass(frozen=True)
class Spec:
  """Everything static about a run's step (hashable: keys the compile cache)."""

  num_features: int
  num_classes: int
  sparse: bool
  dedupe: bool
  l2_mode: str            # none | scale | lazy | grad
  use_scale: bool
  weight_decay: float
  optimizer: OptimizerOptions  # with learning_rate 1 (lr is traced: hyper)
  total_steps: int
  num_shards: int         # S, sub-batches per step over all devices
  distributed: bool
  rescale: bool = False   # check every step whether V must absorb the scale
  loss: losses.Loss = None   # the loss's table entry, settings bound
  # With S > 1 sub-batches (sparse path): the 1-device step's slot and
  # document widths (T, D), the layout `one_device_step.layout` rebuilds.
  step_slots: int = 0
  step_docs: int = 0

def make_spec(optimizer: OptimizerOptions, training: TrainOptions,
              num_features: int, num_classes: int, total_steps: int,
              num_shards: int = 1, distributed: bool = False,
              l2_nonzero: bool | None = None) -> Spec:
  """The static description of the step for these options.

  ``l2_nonzero`` (default: ``training.l2 > 0``) says whether any model of the
  run has an L2 penalty (a sweep's grid may mix zero and non-zero l2).
  """
  oc = optimizer
  sparse = choose_update(training.update_path, num_features) == 'sparse'
  l2_nonzero = (float(training.l2) > 0 if l2_nonzero is None
                else l2_nonzero)
  plain_sgd = optim.is_plain(oc)   # the direction is the gradient itself
  if not l2_nonzero:
    l2_mode = 'none'
  elif not sparse:
    l2_mode = 'grad'
  else:
    l2_mode = 'scale' if plain_sgd else 'lazy'
  wd = float(oc.weight_decay)
  dedupe = sparse and (not plain_sgd or l2_mode == 'lazy')
  # The learning rate is a traced argument (hyper), not part of the program.
  return Spec(num_features, num_classes, sparse, dedupe, l2_mode,
              sparse and (wd > 0 or l2_mode == 'scale'), wd,
              dataclasses.replace(oc, learning_rate=1.0), int(total_steps),
              int(num_shards), bool(distributed),
              loss=train_loss(training))


def with_steps(spec: Spec, total_steps: int, max_lr: float,
               max_l2: float) -> Spec:
  """Sets the run length and whether the global scale can underflow.

  The scale shrinks by at most ``(1 - max_lr * decay)`` per step, so if that
  to the power of the run length stays above 1e-30 no rescaling is needed
  (the common case); otherwise every step checks (a `lax.cond`, which under
  the sweep's vmap would evaluate both branches, hence the static choice).
  """
  decay = spec.weight_decay + (2.0 * max_l2 if spec.l2_mode == 'scale' else 0.)
  shrink = max(1.0 - max_lr * decay, 0.0)
  rescale = spec.use_scale and (shrink ** total_steps < 1e-30)
  return dataclasses.replace(spec, total_steps=int(total_steps),
                             rescale=bool(rescale))


def init_state(spec: Spec, params: Params) -> TrainState:
  """The training state at step 0 (W = V, scale 1, fresh optimiser state)."""
  direction = optim.make_direction(spec.optimizer)
  W = np.asarray(params.W, np.float32)   # numpy: no device op to compile
  b = np.asarray(params.b, np.float32)
  opt_state = direction.init(Params(W, b)) if (
      optim.has_row_state(spec.optimizer)) else direction.init(
          Params(W[:0], b))
  return TrainState(W, np.float32(1.0), b, opt_state, np.int32(0))


def state_params(state: TrainState) -> Params:
  """float32 numpy Params (W = scale * V, b) of a (replicated) state."""
  W = distributed.local_value(state.V)
  scale = float(distributed.local_value(state.scale))
  if scale != 1.0:
    W = W * np.float32(scale)
  return Params(W.astype(np.float32, copy=False),
                distributed.local_value(state.b).astype(np.float32))


def _weighted_sum_and_count(nll, mask):
  """(sum of mask-weighted NLLs, number of documents with mask > 0).

  The batch loss is the weighted sum over the documents' count, not over the
  weights' sum: scikit-learn's sample_weight semantics (a document of weight
  2 counts as two in the sum, once in the mean's denominator).
  """
  real = mask > 0
  return (jnp.sum(jnp.where(real, nll * mask, 0.0)),
          jnp.sum(real.astype(mask.dtype)))


def _scores(rows, b, slot, weights, seg, num_docs: int):
  """z [D, C] = segment_sum(w * rows[slot]) + b of one sub-batch."""
  tok = rows if slot is None else rows[slot]                 # [T, C]
  return jax.ops.segment_sum(tok * weights[:, None], seg,
                             num_segments=num_docs,
                             indices_are_sorted=True) + b    # [D, C]


def _sub_batch_nll(loss, rows, b, slot, weights, seg, labels, mask):
  """Summed loss and document count of one sub-batch; rows [U, C] -> [].

  ``labels`` int [D] or multi-hot [D, C], as ``loss`` (a `losses.Loss`)
  takes them.
  """
  z = _scores(rows, b, slot, weights, seg, mask.shape[0])
  return _weighted_sum_and_count(loss(z, labels), mask)


def _batch_nll(loss, rows, b, batch):
  """Over the local sub-batches: rows [S_l, U, C] -> (sum loss, num docs)."""
  nll, docs = jax.vmap(functools.partial(_sub_batch_nll, loss),
                       in_axes=(0, None, 0, 0, 0, 0, 0))(
      rows, b, batch.slot, batch.weights, batch.seg, batch.labels, batch.mask)
  return jnp.sum(nll), jnp.sum(docs)


def _sub_batch_grads(loss, rows, b, slot, weights, seg, labels, mask):
  """`_sub_batch_nll` and its gradients.

  The score gradient ``d sum(mask * loss) / dz`` comes from the loss's table
  entry (`losses.Loss.value_and_score_grad`): `jax.vjp` of its function, or
  its hand-derived gradient where it has one (softmax ``p - onehot(y)``,
  sigmoid ``sigmoid(z) - Y``: the same numbers as before, and their program
  compiles in ~20 % less CPU, BUILD_NOTES 2026-12-07). z = segment_sum(w *
  rows[slot]) + b, so the rows get it back through the same
  gather/segment_sum: one [D, C] gradient, no [U, C] transpose of the
  gather for autodiff to build.

  Returns:
    (summed loss [], documents [], g_tok [T, C] per slot, g_z [D, C] per
    document, the scores z [D, C]), not yet divided by the number of
    documents; `_rows_and_bias` sums them into the rows' and b's gradients.
  """
  z = _scores(rows, b, slot, weights, seg, mask.shape[0])
  nll, g_z = loss.value_and_score_grad(z, labels, mask)
  g_tok = g_z.at[seg].get(mode='fill', fill_value=0) * weights[:, None]
  return _weighted_sum_and_count(nll, mask) + (g_tok, g_z, z)


def _batch_grads(rows, b, batch, loss):
  """Over the local sub-batches: (sum loss, docs, g_tok [S_l, T, C],
  g_z [S_l, D, C], z [S_l, D, C]): each slot's and document's gradient, and
  each document's scores."""
  nll, docs, g_tok, g_z, z = jax.vmap(
      functools.partial(_sub_batch_grads, loss),
      in_axes=(0, None, 0, 0, 0, 0, 0))(
          rows, b, batch.slot, batch.weights, batch.seg, batch.labels,
          batch.mask)
  return jnp.sum(nll), jnp.sum(docs), g_tok, g_z, z


def _rows_and_bias(g_tok, g_z, slot, num_rows: int):
  """Sums [S, T, C] slot and [S, D, C] document gradients into g_rows
  [S, U, C] (each slot onto its row, or one row per slot without ``slot``)
  and g_b [C]."""
  g_rows = g_tok if slot is None else jax.vmap(
      lambda g, s: jax.ops.segment_sum(g, s, num_segments=num_rows))(
          g_tok, slot)
  return g_rows, jnp.sum(jnp.sum(g_z, 1), 0)


def train_step(spec: Spec, state: TrainState, batch, hyper, sched,
               scratch=None):
  """One optimiser step on one global batch.

  ``sched``: int32 [2] (total, warmup) steps of the schedule. ``scratch``
  (sparse path, see `chunk_program.run_chunk`): a carried [S_l, U + 8, C] buffer
  the gathered rows are written into. Returns (state, scratch, mean loss).
  """
  direction = optim.make_direction(spec.optimizer)
  lr, l2 = hyper
  lr_t = lr * traced_schedule.schedule_shape(spec.optimizer, state.step,
                                              sched)
  V, scale, b, opt_state = state.V, state.scale, state.b, state.opt_state
  psum = ((lambda v: jax.lax.psum(v, distributed.AXIS)) if spec.distributed
          else (lambda v: v))
  if spec.sparse:
    rows = gather_padded_rows(V, batch.uids) * scale         # [S_l, U, C]
    if scratch is not None:
      scratch = jax.lax.dynamic_update_slice(scratch, rows, (0, 0, 0))
      rows = jax.lax.dynamic_slice(scratch, (0, 0, 0), rows.shape)
    nll, docs, g_tok, g_z, z = _batch_grads(rows, b, batch, spec.loss)
    if spec.num_shards == 1:
      nll, docs = psum(nll), psum(docs)
      uids = batch.uids.reshape(-1)
      g_rows, g_b = _rows_and_bias(g_tok, g_z, batch.slot, rows.shape[1])
    else:   # every device rebuilds the whole step: no psum
      del g_z
      uids, g_tok, z, labels, mask = one_device_step.layout(spec, batch, b,
                                                            g_tok, z)
      nll, g_z = jax.vmap(spec.loss.value_and_score_grad)(z, labels, mask)
      nll, docs = jax.vmap(_weighted_sum_and_count)(nll, mask)
      nll, docs = jnp.sum(nll), jnp.sum(docs)
      slot = None
      if spec.dedupe:   # sorted unique rows, as packing.pack's dedupe
        uids, slot = jnp.unique(uids, size=uids.shape[0],
                                fill_value=spec.num_features,
                                return_inverse=True)
        slot = slot.reshape(1, -1)
      g_rows, g_b = _rows_and_bias(g_tok[None], g_z, slot, uids.shape[0])
    g_rows = g_rows.reshape(uids.shape[0], -1)
    denom = jnp.maximum(docs, 1.0)
    g_rows, g_b = g_rows / denom, g_b / denom
    if spec.l2_mode == 'lazy':
      g_rows = g_rows + 2.0 * l2 * gather_padded_rows(V, uids) * scale
    row_state = optim.gather_state_rows(opt_state, uids, V.shape)
    d, row_state = direction.update(Params(g_rows, g_b), row_state)
    opt_state = optim.scatter_state_rows(opt_state, row_state, uids, V.shape)
    if spec.use_scale:
      decay = spec.weight_decay + (2.0 * l2 if spec.l2_mode == 'scale' else 0.)
      scale = scale * (1.0 - lr_t * decay)
      V = V.at[uids].add(-lr_t * d.W / scale, mode='drop')
      if spec.rescale:
        V, scale = jax.lax.cond(scale < _RESCALE_BELOW,
                                lambda v, s: (v * s, jnp.ones_like(s)),
                                lambda v, s: (v, s), V, scale)
    else:
      V = V.at[uids].add(-lr_t * d.W, mode='drop')
  else:
    if spec.num_shards > 1:   # every device runs the whole step: no psum
      batch, psum = one_device_step.dense_batch(spec, batch), (lambda v: v)

    def full(p):
      return _batch_nll(spec.loss, gather_padded_rows(p.W, batch.uids), p.b,
                        batch)
    (nll, docs), g = jax.value_and_grad(full, has_aux=True)(Params(V, b))
    nll, docs, g = psum(nll), psum(docs), psum(g)
    denom = jnp.maximum(docs, 1.0)
    g = jax.tree_util.tree_map(lambda t: t / denom, g)
    if spec.l2_mode == 'grad':
      g = Params(g.W + 2.0 * l2 * V, g.b)
    d, opt_state = direction.update(g, opt_state)
    V = V - lr_t * (d.W + spec.weight_decay * V)
  b = b - lr_t * d.b
  loss = nll / jnp.maximum(docs, 1.0)
  return TrainState(V, scale, b, opt_state, state.step + 1), scratch, loss
