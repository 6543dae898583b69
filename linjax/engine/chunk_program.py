"""The compiled chunk of K training steps: its program, cache and feeding.

Shapes: N documents, F features, C classes; G steps per epoch, K steps per
call, S sub-batches per step, T slots and D documents per sub-batch, U rows
per sub-batch. The step itself (`step.train_step`) is in linjax/engine/step.py.

* Data: `packing.pack` lays the corpus out ONCE per run in fixed-shape steps
  (token budget T, at most D documents; see linjax/engine/packing.py). The host
  draws each epoch's step order from (seed, epoch) (`batch_order`) and feeds
  the compiled "chunk" program K steps a call (``train.steps_per_call``);
  the last call of an epoch runs only its real steps (a traced trip count).
  The program's shapes depend on K, T, D, F, C but not on G, and the run
  length is a traced argument, so it can be compiled before featurisation
  (`training.precompile`, `compile_async`) and is reused by every epoch and by
  later `fit` calls with the same shapes (`compiled_chunk`). The training
  state is donated.
* Compile cache: one AOT-compiled program per (Spec without its run length,
  mesh, vmapped, argument shapes), shared across threads (`compiled_chunk`,
  `compile_async`); `enable_compile_cache` adds JAX's on-disk cache
  (linjax/engine/compile_cache.py).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import model
from linjax.engine import host_memory
from linjax.engine import optimizers as optim
from linjax.engine import packing
from linjax.engine.distributed import AXIS
from linjax.engine.step import train_step
from linjax.engine.step import Spec
from linjax.engine.step import TrainState

Params = model.Params
TRACE_COUNTS = {'epoch': 0}   # incremented each time a chunk is traced
_LOCK = threading.RLock()
_COMPILED: dict = {}
_PENDING: dict = {}


def run_chunk(spec: Spec, state, batches, hyper, sched, num_active):
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
  epoch, so it can be compiled before the data exist (`training.precompile`).
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
    st, scratch, loss = train_step(spec, st, batch, hyper, sched, scratch)
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


def gather_steps(batches, idx: np.ndarray, chunk_steps: int,
                 num_features: int):
  """Host arrays [K, ...] of the steps ``idx`` (<= K) of ``batches`` [G, ...].

  The tail past ``len(idx)`` holds empty steps (rows F, no documents).
  """
  n = idx.shape[0]
  fills = packing.pad_values(num_features, batches.mask.shape[-1])

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
              spec: Spec, chunk_steps: int, mesh=None, gather=None):
  """One epoch as ceil(G / K) calls of the compiled chunk ``fn``.

  Args:
    fn: from `compiled_chunk`.
    state: TrainState (donated to ``fn``).
    batches: host PackedBatches [G, S_l, ...] (no doc_index).
    hyper, sched: as for `run_chunk` (replicated with a mesh).
    order: int [G] the epoch's step order (`batch_order`).
    spec: the Spec.
    chunk_steps: K.
    mesh: the data-parallel mesh or None.
    gather: ``gather(idx, K)`` -> the steps ``idx`` as `gather_steps` gives
      them (spilled steps read them from disk: linjax/engine/spill.py);
      None: `gather_steps` from ``batches``.

  Returns:
    (state, losses [..., G] in visiting order), numpy losses.
  """
  from linjax.engine import distributed
  outs = []
  for c in range(0, order.shape[0], chunk_steps):
    idx = order[c:c + chunk_steps]
    chunk = (gather_steps(batches, idx, chunk_steps, spec.num_features)
             if gather is None else gather(idx, chunk_steps))
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
  direction = optim.make_direction(spec.optimizer)
  rows = W if optim.has_row_state(spec.optimizer) else jax.ShapeDtypeStruct(
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
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P
  rep = NamedSharding(mesh, P()) if mesh is not None else None
  split = NamedSharding(mesh, P(None, AXIS)) if mesh is not None else None

  def sds(shape, dtype, sharding=rep):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

  k, s, t, u, d = (chunk_steps, spec.num_shards, token_budget, num_rows,
                   max_docs)
  i32, f32 = jnp.int32, jnp.float32
  # Labels: a class id per document, or a multi-hot row (the loss's kind).
  labels = (sds((k, s, d, spec.num_classes), jnp.uint8, split)
            if spec.loss.multi_label else sds((k, s, d), i32, split))
  split_step = spec.num_shards > 1   # linjax/engine/step_split.py
  batches = packing.PackedBatches(
      uids=sds((k, s, u), i32, split),
      slot=(sds((k, s, t), i32, split) if spec.dedupe and not split_step
            else None),
      weights=sds((k, s, t), f32, split), seg=sds((k, s, t), i32, split),
      labels=labels, mask=sds((k, s, d), f32, split),
      doc_index=None,
      slot_pos=sds((k, s, t), i32, split) if split_step else None,
      doc_pos=sds((k, s, d), i32, split) if split_step else None)
  state = jax.tree_util.tree_map(lambda a: sds(a.shape, a.dtype),
                                 abstract_state(spec))
  return (state, batches, (sds((), f32), sds((), f32)), sds((2,), i32),
          sds((), i32))


# Slot budgets T above train.token_budget that `training.precompile` compiled
# for, keyed by (spec before `with_steps`, mesh).
WIDTH_HINTS: dict = {}


def clear_cache() -> None:
  """Forgets compiled chunks and width hints (tests use it to count traces)."""
  with _LOCK:
    _COMPILED.clear()
    WIDTH_HINTS.clear()


def _cache_key(spec: Spec, args, mesh, vmapped: bool):
  # The run length is a traced argument: not part of the program.
  return (dataclasses.replace(spec, total_steps=0), mesh, vmapped,
          jax.tree_util.tree_structure(args),
          tuple((tuple(a.shape), np.dtype(a.dtype))
                for a in jax.tree_util.tree_leaves(args)))


def _lower(spec: Spec, args, mesh, vmapped: bool):
  fn = functools.partial(run_chunk, spec)
  if vmapped:
    fn = jax.vmap(fn, in_axes=(0, None, 0, None, None))
  if mesh is not None:
    from jax.sharding import PartitionSpec as P
    fn = jax.shard_map(fn, mesh=mesh,
                       in_specs=(P(), P(None, AXIS), P(), P(), P()),
                       out_specs=(P(), P()), check_vma=False)
  return jax.jit(fn, donate_argnums=0).lower(*args)


# XLA:CPU at LLVM optimisation level 1 instead of the default: the same
# numbers (W bit-identical on all three benchmark corpora), 25 % faster
# epochs on healthtweets (0.49 -> 0.37 s for 4 epochs, 6 runs each), 10 % on
# fortunes, and a slightly shorter compile. Level 0 is 4x slower to run.
CPU_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}


def compiler_options(mesh=None) -> dict:
  """XLA options for the chunk program: `CPU_COMPILER_OPTIONS` on CPU."""
  platform = (mesh.devices.flat[0].platform if mesh is not None
              else jax.default_backend())
  return dict(CPU_COMPILER_OPTIONS) if platform == 'cpu' else {}


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
    compiled = lowered.compile(compiler_options=compiler_options(mesh))
  except BaseException as e:
    with _LOCK:
      _PENDING.pop(key, None)
    future.set_exception(e)
    raise
  # XLA's compiler frees tens of MB that glibc keeps resident (fortunes:
  # ~25 MB of a cold fit's peak): give them back, off the caller's path when
  # this runs in the precompile thread.
  del lowered
  host_memory.trim()
  with _LOCK:
    _COMPILED[key] = compiled
    _PENDING.pop(key, None)
  future.set_result(compiled)
  return compiled


def compiled_chunk(spec: Spec, args, mesh=None, vmapped: bool = False):
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
    return compiled_chunk(spec, args, mesh, vmapped)  # failed there: here


def compile_async(spec: Spec, args, mesh=None, vmapped: bool = False,
                  background: bool = True) -> concurrent.futures.Future:
  """Compiles the chunk program in a daemon thread; a Future of it.

  XLA's backend compiler releases the GIL, so the compile overlaps with host
  work (featurisation) in the calling thread. The key is registered before
  this returns: a later `compiled_chunk` of the same key waits for it.
  """
  key = _cache_key(spec, args, mesh, vmapped)
  compiled, future, owner = _claim(key)
  if compiled is not None:
    future = concurrent.futures.Future()
    future.set_result(compiled)
  elif owner:
    lowered = None
    if background:
      # Trace and lower here, before the caller featurises: tracing is
      # Python (it holds the GIL), and beside featurisation's many short
      # numpy calls (each waits up to the 5 ms switch interval for the GIL
      # back) it made featurising healthtweets 2-3x slower (0.8 -> 1.8 s,
      # H-feat); only XLA's compile or the persistent cache's read (GIL
      # released) runs in the thread. Cold, tracing in the thread was slower
      # too (0.99-1.16 -> 1.12-1.33 s). Warm, same minute, load 11:
      # precompile + featurise 1.82-2.11 s -> 1.65-1.79 s.
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


def enable_compile_cache(path: str) -> str | None:
  """Keeps compiled epochs in ``path`` across processes (JAX's disk cache).

  A later run with the same static shapes, config and JAX version loads the
  executable from disk instead of compiling it (see `FitResult`'s
  compile_seconds). ``path`` is a folder, ``'auto'`` (the user's cache
  folder) or ``''`` (off); an unusable folder warns once and compiles as
  usual. See linjax/engine/compile_cache.py.

  Returns:
    The folder in use, or None.
  """
  from linjax.engine import compile_cache
  return compile_cache.enable(path)
