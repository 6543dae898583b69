"""The compiled training step and chunk: sparse row updates, K steps a call.

Shapes: N documents, F features, C classes; G steps per epoch, K steps per
call, S sub-batches per step, T slots and D documents per sub-batch, U rows
per sub-batch.

* Data: `packing.pack` lays the corpus out ONCE per run in fixed-shape steps
  (token budget T, at most D documents; see linjax/packing.py). The host
  draws each epoch's step order from (seed, epoch) (`batch_order`) and feeds
  the compiled "chunk" program K steps a call (``train.steps_per_call``);
  the last call of an epoch runs only its real steps (a traced trip count).
  The program's shapes depend on K, T, D, F, C but not on G, and the run
  length is a traced argument, so it can be compiled before featurisation
  (`train.precompile`, `compile_async`) and is reused by every epoch and by
  later `fit` calls with the same shapes (`compiled_epoch`). The training
  state is donated.
* Sparse path (``train.update`` sparse, or auto with F > 4096): gather the
  rows W[uids] a step touches, differentiate the batch loss w.r.t. those rows
  and b only, run the optax direction (clip, momentum/Adagrad/Adam) on the
  [U, C] slices, scatter-add the step. Cost per step is O(U C), not O(F C).
  Stateful optimisers keep per-row state and update only touched rows (lazy;
  exact for Adagrad, an approximation for Adam/momentum: linjax/optim.py).
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
* Data parallel (linjax/distributed.py): with a mesh, the epoch runs under
  `shard_map`; each device takes its own sub-batch; the row gradients are
  combined by all-gathering (uids, row grads), de-duplicating and applying
  the same update on every device (psum for the dense path and the bias).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import threading
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import losses
from linjax import model
from linjax import optim

Params = model.Params
DENSE_MAX_FEATURES = 4096
AXIS = 'batch'
_RESCALE_BELOW = 1e-6
TRACE_COUNTS = {'epoch': 0}   # incremented each time a chunk is traced
STEPS_PER_CALL = 128          # K, default of train.steps_per_call


def choose_update(config, num_features: int) -> str:
  """'sparse' or 'dense' from ``train.update`` (auto: dense for F <= 4096)."""
  mode = config.train.get('update', 'auto')
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
  optimizer: tuple        # sorted items of config.optimizer
  total_steps: int
  num_shards: int         # S, sub-batches per step over all devices
  distributed: bool
  rescale: bool = False   # check every step whether V must absorb the scale

  @property
  def opt(self) -> dict:
    return dict(self.optimizer)


def make_spec(config, num_features, num_classes, total_steps, num_shards=1,
              distributed=False, sparse=None, l2_nonzero=None) -> Spec:
  """The static description of the step for ``config``."""
  oc = config.optimizer
  sparse = (choose_update(config, num_features) == 'sparse'
            if sparse is None else sparse)
  l2_nonzero = (float(config.train.l2) > 0 if l2_nonzero is None
                else l2_nonzero)
  plain_sgd = not optim.has_row_state(oc) and not float(oc.clip_norm) > 0
  if not l2_nonzero:
    l2_mode = 'none'
  elif not sparse:
    l2_mode = 'grad'
  else:
    l2_mode = 'scale' if plain_sgd else 'lazy'
  wd = float(oc.weight_decay)
  dedupe = sparse and (not plain_sgd or l2_mode == 'lazy')
  # The learning rate is a traced argument (hyper), not part of the program.
  opt_items = dict(oc.to_dict(), learning_rate=1.0)
  return Spec(num_features, num_classes, sparse, dedupe, l2_mode,
              sparse and (wd > 0 or l2_mode == 'scale'), wd,
              tuple(sorted(opt_items.items())), int(total_steps),
              int(num_shards), bool(distributed))


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
  direction = optim.make_direction(spec.opt)
  W = np.asarray(params.W, np.float32)   # numpy: no device op to compile
  b = np.asarray(params.b, np.float32)
  opt_state = direction.init(Params(W, b)) if optim.has_row_state(
      spec.opt) else direction.init(Params(W[:0], b))
  return TrainState(W, np.float32(1.0), b, opt_state, np.int32(0))


def state_params(state: TrainState) -> Params:
  """float32 numpy Params (W = scale * V, b) of a (replicated) state."""
  from linjax import distributed
  W = distributed.local_value(state.V)
  scale = float(distributed.local_value(state.scale))
  if scale != 1.0:
    W = W * np.float32(scale)
  return Params(W.astype(np.float32, copy=False),
                distributed.local_value(state.b).astype(np.float32))


def _sub_batch_nll(rows, b, slot, weights, seg, labels, mask):
  """Summed NLL and document count of one sub-batch; rows [U, C] -> []."""
  tok = rows if slot is None else rows[slot]                 # [T, C]
  z = jax.ops.segment_sum(tok * weights[:, None], seg,
                          num_segments=labels.shape[0],
                          indices_are_sorted=True) + b       # [D, C]
  nll = losses.nll_from_logits(z, labels)
  return jnp.sum(jnp.where(mask > 0, nll, 0.0)), jnp.sum(mask)


def _batch_nll(rows, b, batch):
  """Over the local sub-batches: rows [S_l, U, C] -> (sum NLL, num docs)."""
  nll, docs = jax.vmap(_sub_batch_nll, in_axes=(0, None, 0, 0, 0, 0, 0))(
      rows, b, batch.slot, batch.weights, batch.seg, batch.labels, batch.mask)
  return jnp.sum(nll), jnp.sum(docs)


def gather_rows(V, ids):
  """Rows ``V[ids]``: [F, C], int [...] -> [..., C]; out-of-range ids give 0."""
  return V.at[ids].get(mode='fill', fill_value=0)


def _sub_batch_grads(rows, b, slot, weights, seg, labels, mask):
  """`_sub_batch_nll` and its gradient w.r.t. rows and b, derived by hand.

  With p = softmax(z) and Y the one-hot labels, dNLL/dz = (p - Y) * mask;
  z = segment_sum(w * rows[slot]) + b, so the rows get the scores' gradient
  back through the same gather/segment_sum. Fewer ops than `jax.grad` of the
  loss (no transposed scatter for the label pick): less to compile.

  Returns:
    (summed NLL [], documents [], g_rows [U, C], g_b [C]), not yet divided
    by the number of documents.
  """
  num_docs, num_classes = labels.shape[0], rows.shape[-1]
  tok = rows if slot is None else rows[slot]                 # [T, C]
  z = jax.ops.segment_sum(tok * weights[:, None], seg, num_segments=num_docs,
                          indices_are_sorted=True) + b       # [D, C]
  logp = losses.log_softmax(z)
  onehot = labels[:, None] == jnp.arange(num_classes, dtype=labels.dtype)
  valid = (labels >= 0) & (labels < num_classes)  # a bad label gives NaN
  nll = jnp.where(valid, -jnp.sum(jnp.where(onehot, logp, 0.0), -1), jnp.nan)
  g_z = (jnp.exp(logp) - onehot) * mask[:, None]             # [D, C]
  g_tok = g_z.at[seg].get(mode='fill', fill_value=0) * weights[:, None]
  g_rows = g_tok if slot is None else jax.ops.segment_sum(
      g_tok, slot, num_segments=rows.shape[0])
  return (jnp.sum(jnp.where(mask > 0, nll, 0.0)), jnp.sum(mask), g_rows,
          jnp.sum(g_z, 0))


def _batch_grads(rows, b, batch):
  """Over the local sub-batches: (sum NLL, docs, g_rows [S_l, U, C], g_b)."""
  nll, docs, g_rows, g_b = jax.vmap(
      _sub_batch_grads, in_axes=(0, None, 0, 0, 0, 0, 0))(
          rows, b, batch.slot, batch.weights, batch.seg, batch.labels,
          batch.mask)
  return jnp.sum(nll), jnp.sum(docs), g_rows, jnp.sum(g_b, 0)


def _step(spec: Spec, state: TrainState, batch, hyper, sched, scratch=None):
  """One optimiser step on one global batch.

  ``sched``: int32 [2] (total, warmup) steps of the schedule. ``scratch``
  (sparse path, see `_chunk`): a carried [S_l, U + 8, C] buffer
  the gathered rows are written into. Returns (state, scratch, mean loss).
  """
  direction = optim.make_direction(spec.opt)
  lr, l2 = hyper
  lr_t = lr * schedule_shape(spec.opt, state.step, sched)
  V, scale, b, opt_state = state.V, state.scale, state.b, state.opt_state
  psum = (lambda v: jax.lax.psum(v, AXIS)) if spec.distributed else (
      lambda v: v)
  if spec.sparse:
    rows = gather_rows(V, batch.uids) * scale                # [S_l, U, C]
    if scratch is not None:
      scratch = jax.lax.dynamic_update_slice(scratch, rows, (0, 0, 0))
      rows = jax.lax.dynamic_slice(scratch, (0, 0, 0), rows.shape)
    nll, docs, g_rows, g_b = _batch_grads(rows, b, batch)
    nll, docs, g_b = psum(nll), psum(docs), psum(g_b)
    uids = batch.uids
    if spec.distributed:
      uids = jax.lax.all_gather(uids, AXIS, tiled=True)      # [S, U]
      g_rows = jax.lax.all_gather(g_rows, AXIS, tiled=True)  # [S, U, C]
    uids = uids.reshape(-1)
    g_rows = g_rows.reshape(uids.shape[0], -1)
    if spec.dedupe and spec.num_shards > 1:
      n = uids.shape[0]
      uids, inv = jnp.unique(uids, size=n, fill_value=spec.num_features,
                             return_inverse=True)
      g_rows = jax.ops.segment_sum(g_rows, inv.reshape(-1), num_segments=n)
    denom = jnp.maximum(docs, 1.0)
    g_rows, g_b = g_rows / denom, g_b / denom
    if spec.l2_mode == 'lazy':
      g_rows = g_rows + 2.0 * l2 * gather_rows(V, uids) * scale
    row_state = optim.gather_state_rows(opt_state, uids)
    d, row_state = direction.update(Params(g_rows, g_b), row_state)
    opt_state = optim.scatter_state_rows(opt_state, row_state, uids)
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
    def full(p):
      return _batch_nll(gather_rows(p.W, batch.uids), p.b, batch)
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


def _mix(h):
  """A 32-bit integer hash (murmur3/splitmix finaliser), uint32 -> uint32."""
  h = (h ^ (h >> 16)) * np.uint32(0x7FEB352D)
  h = (h ^ (h >> 15)) * np.uint32(0x846CA68B)
  return h ^ (h >> 16)


def batch_order(seed, epoch, num_steps: int) -> np.ndarray:
  """int32 [G]: the order in which epoch ``epoch`` visits the packed steps.

  A permutation drawn on the host: step i gets the key hash(seed, epoch, i)
  and the steps are sorted (stably) by key. Deterministic from (seed, epoch);
  the same numbers as the former on-device draw.
  """
  seed = np.asarray([seed]).astype(np.uint32)
  epoch = np.asarray([epoch]).astype(np.uint32)
  base = _mix(_mix(seed + np.uint32(0x9E3779B9)) ^ epoch)
  keys = _mix(_mix(np.arange(num_steps, dtype=np.uint32) ^ base) + base)
  return np.argsort(keys, kind='stable').astype(np.int32)


def schedule_args(spec: Spec) -> np.ndarray:
  """int32 [2]: (total steps, warmup steps), the schedule's traced lengths."""
  total = max(int(spec.total_steps), 1)
  warmup = int(float(spec.opt.get('warmup_fraction', 0.05)) * total)
  return np.array([total, warmup], np.int32)


def schedule_shape(opt: dict, step: jax.Array, sched: jax.Array):
  """The schedule of `optim.make_schedule` (peak 1) with traced lengths.

  Args:
    opt: the optimizer config as a dict.
    step: int32 [] steps taken so far.
    sched: int32 [2] from `schedule_args` (a traced argument, so that the
      compiled program does not depend on the run length).

  Returns:
    float32 [] factor of the learning rate (optax's formulas).
  """
  kind = opt.get('schedule', 'constant')
  total, warmup = sched[0], sched[1]
  if kind == 'constant':
    return jnp.float32(1.0)
  if kind == 'linear':
    count = jnp.clip(step, 0, total)
    return (1.0 - 0.0) * (1.0 - count / total) + 0.0
  if kind == 'exponential':
    rate = jnp.float32(float(opt.get('decay_rate', 0.1)))
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


def _chunk(spec: Spec, state, batches, hyper, sched, num_active):
  """Runs the first ``num_active`` of K given steps: (state, losses [K]).

  Args:
    spec: the static Spec.
    state: TrainState.
    batches: PackedBatches of host-chosen steps, arrays [K, S_l, ...].
    hyper: (learning rate [], l2 []).
    sched: int32 [2], see `schedule_args`.
    num_active: int32 [], steps to run (the rest pads the last chunk of an
      epoch and is never executed: a loop with a traced trip count, so the
      state after a chunk is exactly that after its active steps).

  Returns:
    (state, losses [K]) with 0 for the inactive steps.

  The program's shapes depend on K, not on the number of steps G of the
  epoch, so it can be compiled before the data exist (`train.precompile`).
  The sparse path gathers each step's rows into a buffer carried by the loop
  (an in-place dynamic-update-slice) rather than into a fresh array: XLA:CPU
  splits a fresh gather of this size over its thread pool, and waking the
  other thread cost more than the gather itself (an epoch on healthtweets:
  0.10 s -> 0.083 s on 2 cores, same numbers).
  """
  with _LOCK:
    TRACE_COUNTS['epoch'] += 1
  num_steps = batches.weights.shape[0]

  def body(i, carry):
    st, scratch, losses_ = carry
    batch = jax.tree_util.tree_map(
        lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), batches)
    st, scratch, loss = _step(spec, st, batch, hyper, sched, scratch)
    return st, scratch, losses_.at[i].set(loss)

  scratch = None
  if spec.sparse:
    _, s_local, num_rows = batches.uids.shape
    scratch = jnp.zeros((s_local, num_rows + 8, spec.num_classes),
                        jnp.float32)
  losses_ = jnp.zeros((num_steps,), jnp.float32)
  state, _, losses_ = jax.lax.fori_loop(0, num_active, body,
                                        (state, scratch, losses_))
  return state, losses_


def _epoch(spec: Spec, state, batches, hyper, seed, epoch):
  """A whole epoch in one program (micro-benchmarks): (state, losses [G]).

  ``batches`` are all G packed steps, visited in `batch_order` (drawn here
  on device with the same hash). `train.fit` instead feeds host-ordered
  chunks of K steps (`run_epoch`), so that its program does not depend on G.
  """
  num_steps = batches.weights.shape[0]
  seed = jnp.asarray(seed).astype(jnp.uint32)
  epoch = jnp.asarray(epoch).astype(jnp.uint32)
  base = _mix(_mix(seed + np.uint32(0x9E3779B9)) ^ epoch)
  keys = _mix(_mix(jnp.arange(num_steps, dtype=jnp.uint32) ^ base) + base)
  order = jnp.argsort(keys, stable=True)
  batches = jax.tree_util.tree_map(lambda a: a[order], batches)
  return _chunk(spec, state, batches, hyper, schedule_args(spec), num_steps)


def _pad_values(num_features: int, max_docs: int) -> dict:
  return dict(uids=num_features, slot=0, weights=0, seg=max_docs, labels=0,
              mask=0)


def gather_steps(batches, idx: np.ndarray, chunk_steps: int,
                 num_features: int):
  """Host arrays [K, ...] of the steps ``idx`` (<= K) of ``batches`` [G, ...].

  The tail past ``len(idx)`` holds empty steps (rows F, no documents).
  """
  n = idx.shape[0]
  fills = _pad_values(num_features, batches.labels.shape[-1])

  def take(name, a):
    if a is None:
      return None
    out = np.empty((chunk_steps,) + a.shape[1:], a.dtype)
    np.take(a, idx, axis=0, out=out[:n])
    out[n:] = fills[name]
    return out

  return batches._replace(**{k: take(k, getattr(batches, k))
                             for k in fills})


def run_epoch(fn, state, batches, hyper, sched, order: np.ndarray,
              spec: Spec, chunk_steps: int, mesh=None):
  """One epoch as ceil(G / K) calls of the compiled chunk ``fn``.

  Args:
    fn: from `compiled_epoch`.
    state: TrainState (donated to ``fn``).
    batches: host PackedBatches [G, S_l, ...] (no doc_index).
    hyper, sched: as for `_chunk` (replicated with a mesh).
    order: int [G] the epoch's step order (`batch_order`).
    spec: the Spec.
    chunk_steps: K.
    mesh: the data-parallel mesh or None.

  Returns:
    (state, losses [..., G] in visiting order), numpy losses.
  """
  from linjax import distributed
  outs = []
  for c in range(0, order.shape[0], chunk_steps):
    idx = order[c:c + chunk_steps]
    chunk = gather_steps(batches, idx, chunk_steps, spec.num_features)
    n = np.int32(idx.shape[0])
    if mesh is not None:
      chunk = distributed.shard_steps(chunk, mesh)
      n = distributed.replicate(n, mesh)
    state, losses_ = fn(state, chunk, hyper, sched, n)
    outs.append((losses_, idx.shape[0]))
  losses_ = np.concatenate([distributed.local_value(l)[..., :n]
                            for l, n in outs], axis=-1)
  return state, losses_


def abstract_state(spec: Spec) -> TrainState:
  """ShapeDtypeStructs of `init_state`'s result (no arrays allocated)."""
  f32 = jnp.float32
  W = jax.ShapeDtypeStruct((spec.num_features, spec.num_classes), f32)
  b = jax.ShapeDtypeStruct((spec.num_classes,), f32)
  direction = optim.make_direction(spec.opt)
  rows = W if optim.has_row_state(spec.opt) else jax.ShapeDtypeStruct(
      (0, spec.num_classes), f32)
  opt_state = jax.eval_shape(direction.init, Params(rows, b))
  return TrainState(W, jax.ShapeDtypeStruct((), f32), b, opt_state,
                    jax.ShapeDtypeStruct((), jnp.int32))


def abstract_args(spec: Spec, chunk_steps: int, token_budget: int,
                  num_rows: int, max_docs: int, mesh=None):
  """The argument shapes of the chunk program, before any data exist.

  Args:
    spec: the Spec (its num_shards is the global S).
    chunk_steps: K.
    token_budget: T.
    num_rows: U (T, or `packing.dedupe_width(T)` for de-duplicated rows).
    max_docs: D.
    mesh: the data-parallel mesh or None.

  Returns:
    (state, batches, hyper, sched, num_active) of ShapeDtypeStructs.
  """
  from linjax import packing
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P
  rep = NamedSharding(mesh, P()) if mesh is not None else None
  split = NamedSharding(mesh, P(None, AXIS)) if mesh is not None else None

  def sds(shape, dtype, sharding=rep):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

  k, s, t, u, d = (chunk_steps, spec.num_shards, token_budget, num_rows,
                   max_docs)
  i32, f32 = jnp.int32, jnp.float32
  batches = packing.PackedBatches(
      uids=sds((k, s, u), i32, split),
      slot=sds((k, s, t), i32, split) if spec.dedupe else None,
      weights=sds((k, s, t), f32, split), seg=sds((k, s, t), i32, split),
      labels=sds((k, s, d), i32, split), mask=sds((k, s, d), f32, split),
      doc_index=None)
  state = jax.tree_util.tree_map(lambda a: sds(a.shape, a.dtype),
                                 abstract_state(spec))
  return (state, batches, (sds((), f32), sds((), f32)), sds((2,), i32),
          sds((), i32))


_LOCK = threading.RLock()
_COMPILED: dict = {}
_PENDING: dict = {}


def clear_cache() -> None:
  """Forgets compiled chunks (tests use it to count traces)."""
  with _LOCK:
    _COMPILED.clear()


def _cache_key(spec: Spec, args, mesh, vmapped: bool):
  # The run length is a traced argument: not part of the program.
  return (dataclasses.replace(spec, total_steps=0), mesh, vmapped,
          jax.tree_util.tree_structure(args),
          tuple((tuple(a.shape), np.dtype(a.dtype))
                for a in jax.tree_util.tree_leaves(args)))


def _lower(spec: Spec, args, mesh, vmapped: bool):
  fn = functools.partial(_chunk, spec)
  if vmapped:
    fn = jax.vmap(fn, in_axes=(0, None, 0, None, None))
  if mesh is not None:
    from jax.sharding import PartitionSpec as P
    fn = jax.shard_map(fn, mesh=mesh,
                       in_specs=(P(), P(None, AXIS), P(), P(), P()),
                       out_specs=(P(), P()), check_vma=False)
  return jax.jit(fn, donate_argnums=0).lower(*args)


def _claim(key):
  """(compiled, None, False) if cached, else (None, future, owner)."""
  with _LOCK:
    if key in _COMPILED:
      return _COMPILED[key], None, False
    if key in _PENDING:
      return None, _PENDING[key], False
    future = _PENDING[key] = concurrent.futures.Future()
    return None, future, True


def _build(key, future, spec: Spec, args, mesh, vmapped: bool,
           lowered=None):
  try:
    if lowered is None:
      lowered = _lower(spec, args, mesh, vmapped)
    compiled = lowered.compile()
  except BaseException as e:
    with _LOCK:
      _PENDING.pop(key, None)
    future.set_exception(e)
    raise
  with _LOCK:
    _COMPILED[key] = compiled
    _PENDING.pop(key, None)
  future.set_result(compiled)
  return compiled


def compiled_epoch(spec: Spec, args, mesh=None, vmapped: bool = False):
  """AOT-compiled chunk program for these argument shapes (cached).

  ``args`` = (state, batches [K, ...], hyper, sched, num_active), arrays or
  ShapeDtypeStructs. Thread-safe: if the same program is being compiled in
  another thread (`compile_async`), waits for it instead of compiling twice.

  Returns:
    (compiled fn, seconds spent here compiling or waiting).
  """
  key = _cache_key(spec, args, mesh, vmapped)
  start = time.perf_counter()
  compiled, future, owner = _claim(key)
  if compiled is not None:
    return compiled, 0.0
  if owner:
    compiled = _build(key, future, spec, args, mesh, vmapped)
    return compiled, time.perf_counter() - start
  try:
    return future.result(), time.perf_counter() - start
  except Exception:  # pylint: disable=broad-except
    return compiled_epoch(spec, args, mesh, vmapped)  # failed there: here


def compile_async(spec: Spec, args, mesh=None, vmapped: bool = False,
                  background: bool = True) -> concurrent.futures.Future:
  """Compiles the chunk program in a daemon thread; a Future of it.

  XLA's backend compiler releases the GIL, so the compile overlaps with host
  work (featurisation) in the calling thread. The key is registered before
  this returns: a later `compiled_epoch` of the same key waits for it.
  """
  key = _cache_key(spec, args, mesh, vmapped)
  compiled, future, owner = _claim(key)
  if compiled is not None:
    future = concurrent.futures.Future()
    future.set_result(compiled)
  elif owner:
    lowered = None
    if background:
      # Trace and lower here: Python work that would hold the GIL against
      # the caller's featurisation; only XLA's compile (GIL released) runs
      # in the thread.
      try:
        lowered = _lower(spec, args, mesh, vmapped)
      except Exception as e:  # pylint: disable=broad-except
        with _LOCK:
          _PENDING.pop(key, None)
        future.set_exception(e)   # fit compiles (and reports) it itself
        return future

    def work():
      try:
        _build(key, future, spec, args, mesh, vmapped, lowered)
      except BaseException:  # pylint: disable=broad-except
        pass  # the future holds the error; fit compiles again

    if background:
      threading.Thread(target=work, name='linjax-precompile',
                       daemon=True).start()
    else:
      work()
  return future


def enable_compile_cache(path: str) -> None:
  """Keeps compiled epochs in ``path`` across processes (JAX's disk cache).

  A later run with the same static shapes, config and JAX version loads the
  executable from disk instead of compiling it (see `FitResult`'s
  compile_seconds). Every compilation is cached, however short or small.
  The directory must be trusted: loading an entry runs its code.
  """
  from jax.experimental.compilation_cache import compilation_cache as cc
  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  # JAX decides once per process whether the cache is in use (at the first
  # compilation); start over so that enabling it late still takes effect.
  cc.reset_cache()
