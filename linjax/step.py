"""The compiled training step and epoch: sparse row updates, one scan an epoch.

Shapes: N documents, F features, C classes; G steps per epoch, S sub-batches
per step, T slots and D documents per sub-batch, U rows per sub-batch.

* Data: `packing.pack` lays the corpus out ONCE per run in fixed-shape steps
  (token budget T, at most D documents; see linjax/packing.py). Each epoch is
  one jit-compiled `lax.scan` over a permutation of the steps drawn on device
  from ``fold_in(seed, epoch)``; the training state is donated, shapes are
  static, so the first epoch compiles and later epochs (and later `fit` calls
  with the same shapes) reuse the executable (`compiled_epoch`).
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

import dataclasses
import functools
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
TRACE_COUNTS = {'epoch': 0}   # incremented each time an epoch is traced


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


def _step(spec: Spec, state: TrainState, batch, hyper, scratch=None):
  """One optimiser step on one global batch.

  ``scratch`` (sparse path, see `_epoch`): a carried [S_l, U + 8, C] buffer
  the gathered rows are written into. Returns (state, scratch, mean loss).
  """
  direction = optim.make_direction(spec.opt)
  shape = optim.make_schedule(spec.opt, spec.total_steps, peak=1.0)
  lr, l2 = hyper
  lr_t = lr * shape(state.step)
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


def _mix(h: jax.Array) -> jax.Array:
  """A 32-bit integer hash (murmur3/splitmix finaliser), uint32 -> uint32."""
  h = (h ^ (h >> 16)) * jnp.uint32(0x7FEB352D)
  h = (h ^ (h >> 15)) * jnp.uint32(0x846CA68B)
  return h ^ (h >> 16)


def batch_order(seed, epoch, num_steps: int) -> jax.Array:
  """int32 [G]: the order in which epoch ``epoch`` visits the packed steps.

  A permutation drawn on device: step i gets the key hash(seed, epoch, i) and
  the steps are sorted by key. A counter-based hash instead of
  `jax.random.permutation`, whose threefry rounds and repeated sorts took
  0.4 s to compile here against 0.02 s for this.
  """
  seed = jnp.asarray(seed).astype(jnp.uint32)
  epoch = jnp.asarray(epoch).astype(jnp.uint32)
  base = _mix(_mix(seed + jnp.uint32(0x9E3779B9)) ^ epoch)
  keys = _mix(_mix(jnp.arange(num_steps, dtype=jnp.uint32) ^ base) + base)
  return jnp.argsort(keys).astype(jnp.int32)


def _epoch(spec: Spec, state, batches, hyper, seed, epoch):
  """Runs every packed step once, in a shuffled order: (state, losses [G]).

  The sparse path gathers each step's rows into a buffer carried by the scan
  (an in-place dynamic-update-slice) rather than into a fresh array: XLA:CPU
  splits a fresh gather of this size over its thread pool, and waking the
  other thread cost more than the gather itself (an epoch on healthtweets:
  0.10 s -> 0.083 s on 2 cores, same numbers).
  """
  TRACE_COUNTS['epoch'] += 1

  def body(carry, i):
    st, scratch = carry
    batch = jax.tree_util.tree_map(lambda a: a[i], batches)
    st, scratch, loss = _step(spec, st, batch, hyper, scratch)
    return (st, scratch), loss

  scratch = None
  if spec.sparse:
    _, s_local, num_rows = batches.uids.shape
    scratch = jnp.zeros((s_local, num_rows + 8, spec.num_classes),
                        jnp.float32)
  (state, _), losses_ = jax.lax.scan(
      body, (state, scratch),
      batch_order(seed, epoch, batches.weights.shape[0]))
  return state, losses_


_COMPILED: dict = {}


def clear_cache() -> None:
  """Forgets compiled epochs (tests use it to count traces)."""
  _COMPILED.clear()


def compiled_epoch(spec: Spec, args, mesh=None, vmapped: bool = False):
  """AOT-compiled epoch for these argument shapes (cached); (fn, seconds)."""
  key = (spec, mesh, vmapped, jax.tree_util.tree_structure(args),
         tuple((a.shape, a.dtype, getattr(a, 'sharding', None))
               for a in jax.tree_util.tree_leaves(args)))
  if key in _COMPILED:
    return _COMPILED[key], 0.0
  fn = functools.partial(_epoch, spec)
  if vmapped:
    fn = jax.vmap(fn, in_axes=(0, None, 0, None, None))
  if mesh is not None:
    from jax.sharding import PartitionSpec as P
    fn = jax.shard_map(fn, mesh=mesh,
                       in_specs=(P(), P(None, AXIS), P(), P(), P()),
                       out_specs=(P(), P()), check_vma=False)
  start = time.perf_counter()
  compiled = jax.jit(fn, donate_argnums=0).lower(*args).compile()
  _COMPILED[key] = compiled
  return compiled, time.perf_counter() - start


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
