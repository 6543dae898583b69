"""The training engine: one compiled epoch per call, sparse row updates.

Shapes: N documents, F features, C classes; G steps per epoch, S sub-batches
per step, T slots and D documents per sub-batch, U rows per sub-batch.

* Data: `packing.pack` lays the corpus out ONCE per run in fixed-shape steps
  (token budget T, at most D documents; see linjax/packing.py). Each epoch is
  one jit-compiled `lax.scan` over a permutation of the steps drawn on device
  from ``fold_in(seed, epoch)``; the training state is donated, shapes are
  static, so the first epoch compiles and later epochs (and later `fit` calls
  with the same shapes) reuse the executable.
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
  when it falls under 1e-6 (checked only if the run could get there). The dense path always uses the exact penalty.
* Divergence: the scan returns every step's loss; a non-finite one raises
  `TrainingDiverged` naming the first bad epoch and step; the last good
  checkpoint is left in place.
* Data parallel (linjax/distributed.py): with a mesh, the epoch runs under
  `shard_map`; each device takes its own sub-batch; the row gradients are
  combined by all-gathering (uids, row grads), de-duplicating and applying
  the same update on every device (psum for the dense path and the bias).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linjax import losses
from linjax import model
from linjax import optim
from linjax import packing
from linjax.csr import CsrFeatures
from linjax.features import SparseFeatures
from linjax.optim import ConfigError

Params = model.Params
DENSE_MAX_FEATURES = 4096
AXIS = 'batch'
_RESCALE_BELOW = 1e-6
TRACE_COUNTS = {'epoch': 0}   # incremented each time an epoch is traced


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


def choose_update(config, num_features: int) -> str:
  """'sparse' or 'dense' from ``train.update`` (auto: dense for F <= 4096)."""
  mode = config.train.get('update', 'auto')
  if mode == 'auto':
    return 'dense' if num_features <= DENSE_MAX_FEATURES else 'sparse'
  return mode


# The compiled step and epoch. ---------------------------------------------


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


def _gather(V, ids):
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
    rows = _gather(V, batch.uids) * scale                    # [S_l, U, C]
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
      g_rows = g_rows + 2.0 * l2 * _gather(V, uids) * scale
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
      return _batch_nll(_gather(p.W, batch.uids), p.b, batch)
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
  """A 32-bit integer hash (the murmur3/splitmix finaliser), uint32 -> uint32."""
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


# Evaluation and prediction. -------------------------------------------------


def _bucket(n: int) -> int:
  return 1 << max(int(n) - 1, 0).bit_length()


@jax.jit
def _chunk_logits(W, scale, b, ids, weights):
  return jnp.einsum('nl,nlc->nc', weights, _gather(W, ids)) * scale + b


def _chunks(x: CsrFeatures, batch_size: int):
  """Yields (start, ids [B, L], weights [B, L]) padded to static shapes."""
  lengths = x.row_lengths()
  width = _bucket(int(lengths.max()) if lengths.size else 1)
  for start in range(0, x.num_docs, batch_size):
    part = x.take(np.arange(start, min(start + batch_size, x.num_docs)))
    ids, weights = part.to_padded(width)
    rows = min(_bucket(part.num_docs), batch_size)
    ids = np.pad(ids, ((0, rows - part.num_docs), (0, 0)))
    weights = np.pad(weights, ((0, rows - part.num_docs), (0, 0)))
    yield start, ids, weights


def _logits_scaled(W, scale, b, x: CsrFeatures, batch_size: int) -> np.ndarray:
  out = np.zeros((x.num_docs, np.shape(b)[0]), np.float32)
  for start, ids, weights in _chunks(x, batch_size):
    z = np.asarray(_chunk_logits(W, scale, b, ids, weights))
    out[start:start + batch_size] = z[:min(batch_size, x.num_docs - start)]
  return out


def _host_logits(W: np.ndarray, b: np.ndarray, x: CsrFeatures,
                 batch_size: int) -> np.ndarray:
  """Scores on the host with numpy: no device copy of W, nothing to compile."""
  out = np.empty((x.num_docs, W.shape[1]), np.float32)
  out[:] = b
  for start in range(0, x.num_docs, batch_size):
    stop = min(start + batch_size, x.num_docs)
    lo, hi = x.indptr[start], x.indptr[stop]
    contrib = W[x.ids[lo:hi]] * x.weights[lo:hi, None]          # [nnz, C]
    lengths = np.diff(x.indptr[start:stop + 1])
    rows = np.flatnonzero(lengths)
    if rows.size:
      # reduceat over non-empty rows only (an empty row would repeat a value).
      out[start + rows] += np.add.reduceat(
          contrib, x.indptr[start + rows] - lo, axis=0)
  return out


def predict_logits(params: Params, x: CsrFeatures,
                   batch_size: int = 4096) -> np.ndarray:
  """float32 [N, C] scores ``x W + b`` of a CsrFeatures corpus, in chunks.

  Computed where the parameters live: numpy Params (what `fit` returns and
  `saved_model.load` gives) are scored on the host, without copying W to a
  device or compiling anything; JAX arrays are scored on their device.
  """
  model.check_params(params)
  if x.num_features != np.shape(params.W)[0]:
    raise ValueError(f'predict: x has {x.num_features} features but W has '
                     f'{np.shape(params.W)[0]} rows.')
  if isinstance(params.W, np.ndarray) and isinstance(params.b, np.ndarray):
    return _host_logits(params.W.astype(np.float32, copy=False),
                        params.b.astype(np.float32, copy=False), x,
                        batch_size)
  return _logits_scaled(jnp.asarray(params.W), jnp.float32(1.0),
                        jnp.asarray(params.b), x, batch_size)


def predict_proba(params: Params, x: CsrFeatures,
                  batch_size: int = 4096) -> np.ndarray:
  """float32 [N, C] class probabilities."""
  return np.asarray(losses.softmax(predict_logits(params, x, batch_size)))


def _metrics(z: np.ndarray, y: np.ndarray) -> dict:
  y = np.asarray(y)
  nll = np.asarray(losses.nll_from_logits(jnp.asarray(z), jnp.asarray(y)))
  return dict(loss=float(nll.mean()) if y.size else float('nan'),
              accuracy=float((z.argmax(-1) == y).mean()) if y.size else 0.0)


def evaluate(params: Params, x: CsrFeatures, y) -> dict:
  """dict(loss=mean NLL, accuracy=fraction correct) on (x, y)."""
  return _metrics(predict_logits(params, x), y)


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
           if k not in ('patience', 'checkpoint_every', 'gradcheck')}
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
  packed = packing.pack(train_x, y, token_budget=tc.token_budget, **kwargs)
  if jax.process_count() > 1:  # all processes need the same static shapes
    from linjax import distributed
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
      there are several, see linjax/distributed.py).
    num_shards: sub-batches per step (default: the mesh size, or 1).

  Returns:
    FitResult.
  """
  from linjax import checkpoint
  from linjax import distributed
  validate_config(config)
  tc, oc = config.train, config.optimizer
  train_x.validate('train_x')
  y = _check_labels(train_y, train_x.num_docs, num_classes, 'train_y')
  if val_x is not None:
    val_x.validate('val_x')
    val_y = _check_labels(val_y, val_x.num_docs, num_classes, 'val_y')
  F = train_x.num_features
  if mesh is None:
    mesh = distributed.default_mesh()
  num_devices = mesh.size if mesh is not None else 1
  num_shards = int(num_shards or num_devices)
  if num_shards % num_devices:
    raise ValueError(f'num_shards={num_shards} must be a multiple of the '
                     f'{num_devices} devices.')
  num_local = num_shards // jax.process_count()
  offset = jax.process_index() * num_local
  spec = make_spec(config, F, num_classes, 0, num_shards, mesh is not None)

  start = time.perf_counter()
  packed = _pack(train_x, y, config, spec, num_local, offset)
  pack_seconds = time.perf_counter() - start
  spec = with_steps(spec, packed.num_steps * tc.epochs, oc.learning_rate,
                    tc.l2)
  nnz = float(distributed.all_sum([train_x.nnz])[0])
  if init is None:
    init = Params(np.zeros((F, num_classes), np.float32),
                  np.zeros(num_classes, np.float32))
  state = init_state(spec, init)
  hyper = (np.float32(oc.learning_rate), np.float32(tc.l2))
  seed = np.int32(tc.seed)

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

  batches = packed.device_arrays()
  if mesh is not None:
    state, hyper, seed = distributed.replicate((state, hyper, seed), mesh)
    batches = distributed.shard_steps(batches, mesh)
  else:
    batches = jax.device_put(batches)
  epoch_arg = lambda e: (distributed.replicate(np.int32(e), mesh)
                         if mesh is not None else np.int32(e))
  fn, compile_seconds = compiled_epoch(
      spec, (state, batches, hyper, seed, epoch_arg(first)), mesh)
  metric, patience = tc.get('metric', 'accuracy'), tc.patience
  train_seconds, epoch = 0.0, first
  for epoch in range(first, tc.epochs):
    start = time.perf_counter()
    state, step_losses = fn(state, batches, hyper, seed, epoch_arg(epoch))
    step_losses = distributed.local_value(step_losses)
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
