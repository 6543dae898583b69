"""A step split over S sub-batches, rebuilt inside the program as ONE device
holds it.

A step split over devices and processes (linjax/engine/step_split.py)
carries each slot's and each document's position in the 1-device step
(``batch.slot_pos``, ``batch.doc_pos``). Every device gathers all
sub-batches and puts each value back at its position (`_place`), so what
follows adds the same numbers in the same order as one device: the model
is bit-identical for any number of devices and processes. A psum of
per-device gradients would round differently, and at the default learning
rate such rounding grows over the steps (demo corpus, 2 epochs: 12 % of W).

All of a step's arrays travel in ONE all-gather (`_gather_all` packs them
into one int32 buffer, bit for bit): a collective's fixed cost dominates at
these sizes, and seven of them a step made 2 processes on loopback gloo
~11x slower per step than one (healthtweets, 1.97 ms vs 0.17 ms).

Shapes: S_l sub-batches on this device, T_s slots and D_s documents each;
T (``spec.step_slots``) and D (``spec.step_docs``) those of the 1-device
step; C classes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from linjax.engine.distributed import AXIS


def _as_words(a):
  """[S_l, ...] -> int32 [S_l, n] holding ``a`` exactly (4-byte values
  bitcast, narrower integers widened), and how to undo it."""
  flat = a.reshape(a.shape[0], -1)
  if flat.dtype.itemsize == 4 and flat.dtype != jnp.int32:
    words = jax.lax.bitcast_convert_type(flat, jnp.int32)
    undo = lambda w: jax.lax.bitcast_convert_type(w, a.dtype)
  elif flat.dtype == jnp.int32:
    words, undo = flat, (lambda w: w)
  else:   # uint8 multi-hot labels, int16, bool (< 4 bytes): exact in int32
    words, undo = flat.astype(jnp.int32), (lambda w: w.astype(a.dtype))
  return words, undo


def _gather_all(spec, arrays: dict) -> dict:
  """Every device's sub-batches: {name: [S_l, ...]} -> {name: [S, ...]}.

  The identity on one device; ``spec`` is the step's Spec
  (linjax/engine/step.py). Over several devices or processes, one
  all-gather of every array packed into one int32 buffer (values of 4
  bytes or fewer: all a float32 training step holds), each unpacked bit
  for bit.
  """
  if not spec.distributed:
    return dict(arrays)
  gather = lambda v: jax.lax.all_gather(v, AXIS, tiled=True)
  # 8-byte values (only under jax_enable_x64) travel on their own.
  out = {n: gather(a) for n, a in arrays.items() if a.dtype.itemsize > 4}
  names = [n for n in arrays if n not in out]
  if not names:
    return out
  packed = [_as_words(arrays[n]) for n in names]
  widths = [words.shape[1] for words, _ in packed]
  gathered = gather(jnp.concatenate([words for words, _ in packed],
                                    axis=1))                 # [S, sum widths]
  offset = 0
  for name, (_, undo), width in zip(names, packed, widths):
    part = undo(gathered[:, offset:offset + width])
    out[name] = part.reshape((gathered.shape[0],) + arrays[name].shape[1:])
    offset += width
  return out


def _place(pos, values, size: int = 0, fill=0, base=None):
  """All sub-batches' ``values`` [S, n, ...] at their 1-device positions.

  Args:
    pos: int [S * n] the 1-device position of each value; a position past
      the end (padding) is dropped.
    values: [S, n, ...] every device's sub-batches (`_gather_all`).
    size, fill: the result [size, ...] is ``fill`` where no value lands...
    base: ...or ``base`` [size, ...] (then size and fill are unused).

  Returns:
    [size, ...] of values' dtype (base's with ``base``).
  """
  values = values.reshape((-1,) + values.shape[2:])
  if base is None:
    base = jnp.full((size,) + values.shape[1:], fill, values.dtype)
  return base.at[pos].set(values, mode='drop')


def layout(spec, batch, b, g_tok, z):
  """The sparse path's slots and documents in the 1-device order.

  Each device has computed its own slots' gradients g_tok [S_l, T_s, C]
  and its documents' scores z [S_l, D_s, C]; summing duplicate rows, the
  loss and the bias gradient (recomputed from z) and the update then run
  on the 1-device arrays.

  Returns:
    (ids int32 [T], g_tok [T, C], and z [1, D, C], labels [1, D, ...] and
    mask [1, D] of the 1-device step; a padding document scores b).
  """
  t, d = spec.step_slots, spec.step_docs
  g = _gather_all(spec, dict(
      slot_pos=batch.slot_pos, doc_pos=batch.doc_pos, uids=batch.uids,
      g_tok=g_tok, z=z, labels=batch.labels, mask=batch.mask))
  slots, docs = g['slot_pos'].reshape(-1), g['doc_pos'].reshape(-1)
  ids = _place(slots, g['uids'], t, spec.num_features)
  tok = _place(slots, g['g_tok'], t)
  z = _place(docs, g['z'], base=jnp.broadcast_to(b, (d, g_tok.shape[-1])))
  labels = _place(docs, g['labels'], d)
  mask = _place(docs, g['mask'], d)
  return ids, tok, z[None], labels[None], mask[None]


def dense_batch(spec, batch):
  """The dense path's split step as the ONE sub-batch of 1 device.

  Every device gathers all sub-batches' inputs (ids, weights, documents,
  labels, mask) and places them, so the dense gradient runs the 1-device
  program on the 1-device arrays.

  Returns:
    the batch with uids, weights, seg [1, T], labels [1, D, ...], mask
    [1, D] of the 1-device step (padding as `packing.pad_values`).
  """
  t, d, docs_here = spec.step_slots, spec.step_docs, batch.mask.shape[-1]
  # A slot's document in the 1-device step; padding (seg = D_s) -> d.
  doc_of_slot = jnp.take_along_axis(
      batch.doc_pos, jnp.minimum(batch.seg, docs_here - 1), axis=-1)
  seg = jnp.minimum(jnp.where(batch.seg < docs_here, doc_of_slot, d), d)
  g = _gather_all(spec, dict(
      slot_pos=batch.slot_pos, doc_pos=batch.doc_pos, uids=batch.uids,
      weights=batch.weights, seg=seg, labels=batch.labels, mask=batch.mask))
  slots, docs = g['slot_pos'].reshape(-1), g['doc_pos'].reshape(-1)
  return batch._replace(
      uids=_place(slots, g['uids'], t, spec.num_features)[None],
      slot=None, weights=_place(slots, g['weights'], t)[None],
      seg=_place(slots, g['seg'], t, d)[None],
      labels=_place(docs, g['labels'], d)[None],
      mask=_place(docs, g['mask'], d)[None], slot_pos=None,
      doc_pos=None)
