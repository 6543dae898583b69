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

Shapes: S_l sub-batches on this device, T_s slots and D_s documents each;
T (``spec.step_slots``) and D (``spec.step_docs``) those of the 1-device
step; C classes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from linjax.engine.distributed import AXIS


def _gather_all(spec):
  """v [S_l, ...] -> every device's sub-batches [S, ...] (the identity on
  one device); ``spec`` is the step's Spec (linjax/engine/step.py)."""
  if spec.distributed:
    return lambda v: jax.lax.all_gather(v, AXIS, tiled=True)
  return lambda v: v


def _place(gather, pos, values, size: int = 0, fill=0, base=None):
  """All sub-batches' ``values`` [S_l, n, ...] at their 1-device positions.

  Args:
    gather: `_gather_all`'s function.
    pos: int [S * n] the 1-device position of each gathered value; a
      position past the end (padding) is dropped.
    values: [S_l, n, ...] this device's sub-batches.
    size, fill: the result [size, ...] is ``fill`` where no value lands...
    base: ...or ``base`` [size, ...] (then size and fill are unused).

  Returns:
    [size, ...] of values' dtype (base's with ``base``).
  """
  values = gather(values)
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
  gather = _gather_all(spec)
  t, d = spec.step_slots, spec.step_docs
  slots = gather(batch.slot_pos).reshape(-1)
  docs = gather(batch.doc_pos).reshape(-1)
  ids = _place(gather, slots, batch.uids, t, spec.num_features)
  tok = _place(gather, slots, g_tok, t)
  z = _place(gather, docs, z, base=jnp.broadcast_to(b, (d, g_tok.shape[-1])))
  labels = _place(gather, docs, batch.labels, d)
  mask = _place(gather, docs, batch.mask, d)
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
  gather = _gather_all(spec)
  t, d, docs_here = spec.step_slots, spec.step_docs, batch.mask.shape[-1]
  slots = gather(batch.slot_pos).reshape(-1)
  docs = gather(batch.doc_pos).reshape(-1)
  # A slot's document in the 1-device step; padding (seg = D_s) -> d.
  doc_of_slot = jnp.take_along_axis(
      batch.doc_pos, jnp.minimum(batch.seg, docs_here - 1), axis=-1)
  seg = jnp.minimum(jnp.where(batch.seg < docs_here, doc_of_slot, d), d)
  return batch._replace(
      uids=_place(gather, slots, batch.uids, t, spec.num_features)[None],
      slot=None, weights=_place(gather, slots, batch.weights, t)[None],
      seg=_place(gather, slots, seg, t, d)[None],
      labels=_place(gather, docs, batch.labels, d)[None],
      mask=_place(gather, docs, batch.mask, d)[None], slot_pos=None,
      doc_pos=None)
