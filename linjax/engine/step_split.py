"""Splitting the 1-device steps over S devices and P processes, on the host.

Shapes: N documents (all processes), n of this process; G steps, S
sub-batches per step (S_l = S / P on each process), T_s slots and D_s
documents per sub-batch; T and D those of the 1-device step.

`train.batch_size` and `train.token_budget` describe ONE global step,
whatever the number of devices and processes: `split_plan` packs exactly the
steps `packing.pack` packs on one device (same seed, same documents in each
step) and deals each step's documents over S sub-batches. Process p holds
documents ``bounds[p]:bounds[p + 1]`` of the corpus (the processes' shards
one after another) and feeds sub-batches ``p * S_l .. (p + 1) * S_l - 1``, so
a document always goes to a sub-batch of its own process: only the
documents' entry counts travel between processes, never their features.

Every slot and document also carries its position in the 1-device step
(``slot_pos``, ``doc_pos``): the training step gathers all sub-batches' slot
and document gradients and puts them back in that order before summing
(`one_device_step.layout`), so any number of devices and processes trains
the model one device trains, bit for bit on the sparse path.

Uneven splits: a process's documents in a step are dealt longest first, in
snake order (0, 1, .., S_l - 1, S_l - 1, .., 0, ..), so its sub-batches get
floor or ceil of its n_p documents / S_l each and similar slot counts. A
process with fewer documents in a step (or none) has emptier (or empty)
sub-batches. Every sub-batch has the widest one's shape (T_s, D_s, from the
data); the rest is padding, which adds nothing to the step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linjax.engine import packing
from linjax.text.csr import CsrFeatures


class SplitPlan(NamedTuple):
  """Where each document goes; arrays int64 [N], indexed by document.

  step, sub: the document's step and global sub-batch.
  pos, start: its position among the sub-batch's documents (< max_docs) and
    its first slot there (start + length <= budget).
  step_pos, step_start: the same in the 1-device step (< D, < T).
  num_steps: G.
  budget: T_s, the widest sub-batch's slots rounded up to 8 (at most T).
  max_docs: D_s, the most documents in a sub-batch.
  step_budget, step_docs: T and D, the 1-device step's widths.
  """

  step: np.ndarray
  sub: np.ndarray
  pos: np.ndarray
  start: np.ndarray
  step_pos: np.ndarray
  step_start: np.ndarray
  num_steps: int
  budget: int
  max_docs: int
  step_budget: int
  step_docs: int


def _snake(rank: np.ndarray, ways: int) -> np.ndarray:
  """0, 1, .., ways-1, ways-1, .., 0, 0, 1, ..: the sub-batch of each rank."""
  within = rank % ways
  return np.where((rank // ways) % 2 == 0, within, ways - 1 - within)


def _group_rank(keys: np.ndarray) -> np.ndarray:
  """Position of each entry of the sorted ``keys`` within its run of equals."""
  n = keys.shape[0]
  first = np.ones(n, bool)
  first[1:] = keys[1:] != keys[:-1]
  starts = np.flatnonzero(first)
  return np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))


def split_plan(lengths, bounds, num_shards: int, *, token_budget: int,
               max_docs: int, seed: int = 0) -> SplitPlan:
  """Splits each step of the 1-device packing into ``num_shards`` parts.

  Args:
    lengths: int [N] entry counts of ALL documents (every process's, in
      process order).
    bounds: int [P + 1], 0 = bounds[0] <= .. <= bounds[P] = N.
    num_shards: S, a multiple of P.
    token_budget, max_docs, seed: the 1-device packing's (`packing.pack`).

  Returns:
    SplitPlan (the same on every process).
  """
  lengths = np.asarray(lengths, np.int64)
  bounds = np.asarray(bounds, np.int64)
  n, num_proc = lengths.shape[0], bounds.shape[0] - 1
  if (num_proc < 1 or bounds[0] != 0 or bounds[-1] != n or
      np.any(np.diff(bounds) < 0)):
    raise ValueError(f'split_plan: bounds {bounds.tolist()} must rise from 0 '
                     f'to the {n} documents.')
  if num_shards % num_proc:
    raise ValueError(f'split_plan: num_shards={num_shards} is not a multiple '
                     f'of the {num_proc} processes.')
  ways = num_shards // num_proc
  budget = packing.slot_budget(token_budget, int(lengths.max()) if n else 0)
  # The 1-device packing, from the lengths alone (as packing.pack, S = 1).
  order = np.random.default_rng([int(seed), 0]).permutation(n)
  lens = lengths[order]
  batch, place, place_start, num = packing.assign(lens, budget, max_docs)
  owner = np.searchsorted(bounds, order, side='right') - 1
  # Deal each (step, process)'s documents longest first over its sub-batches.
  by_size = np.lexsort((place, -lens, owner, batch))
  group = batch[by_size] * num_proc + owner[by_size]
  sub = np.empty(n, np.int64)
  sub[by_size] = owner[by_size] * ways + _snake(_group_rank(group), ways)
  # Inside a sub-batch the documents keep their order in the step.
  by_slot = np.lexsort((place, sub, batch))
  key = batch[by_slot] * num_shards + sub[by_slot]
  pos = np.empty(n, np.int64)
  pos[by_slot] = _group_rank(key)
  begins = np.cumsum(lens[by_slot]) - lens[by_slot]
  first = np.ones(n, bool)
  first[1:] = key[1:] != key[:-1]
  group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
  start = np.empty(n, np.int64)
  start[by_slot] = begins - begins[group_start]
  width = int((start + lens).max()) if n else 0
  doc_of = np.empty(n, np.int64)   # back from shuffled to document order
  doc_of[order] = np.arange(n)
  return SplitPlan(
      step=batch[doc_of], sub=sub[doc_of], pos=pos[doc_of],
      start=start[doc_of], step_pos=place[doc_of],
      step_start=place_start[doc_of], num_steps=max(int(num), 1),
      budget=min(max(-(-width // 8) * 8, 8), budget),
      max_docs=max(int(pos.max()) + 1 if n else 1, 1), step_budget=budget,
      step_docs=int(max_docs))


def pack_split(x: CsrFeatures, y, plan: SplitPlan, *, first_doc: int,
               first_shard: int, num_local: int,
               sample_weight=None) -> packing.PackedBatches:
  """This process's sub-batches of a `split_plan`: arrays [G, S_l, ...].

  One row per slot (no de-duplication: the step sums duplicate rows after
  putting the whole step back in its 1-device order), with ``slot_pos`` and
  ``doc_pos``.

  Args:
    x: CsrFeatures of this process's documents, global documents
      ``first_doc .. first_doc + n - 1`` of the plan.
    y: their labels, int [n] or multi-hot [n, C] (as for `packing.pack`).
    plan: from `split_plan`.
    first_doc: the global index of x's first document.
    first_shard, num_local: this process feeds sub-batches ``first_shard ..
      first_shard + num_local - 1``.
    sample_weight: float [n] or None, as for `packing.pack`.

  Returns:
    PackedBatches (doc_index indexes x; -1 for padding).
  """
  (chunk,) = pack_split_chunks(
      x, y, plan, first_doc=first_doc, first_shard=first_shard,
      num_local=num_local, sample_weight=sample_weight,
      chunk_steps=plan.num_steps)
  return chunk


def pack_split_chunks(x: CsrFeatures, y, plan: SplitPlan, *, first_doc: int,
                      first_shard: int, num_local: int, sample_weight=None,
                      chunk_steps: int = 1024):
  """`pack_split`'s steps in order, ``chunk_steps`` at a time: yields
  PackedBatches [k, S_l, ...] (see `pack_split` for the arguments)."""
  y = np.asarray(y)
  n = x.num_docs
  if y.shape[:1] != (n,) or y.ndim > 2:
    raise ValueError(f'pack_split: expected {n} labels, got shape {y.shape}.')
  mine = slice(int(first_doc), int(first_doc) + n)
  if int(first_doc) + n > plan.step.shape[0]:
    raise ValueError(f'pack_split: documents {first_doc}..{first_doc + n - 1}'
                     f' are not all in the plan of {plan.step.shape[0]}.')
  sub = plan.sub[mine] - int(first_shard)
  if n and (sub.min() < 0 or sub.max() >= num_local):
    raise ValueError('pack_split: the documents of this process belong to '
                     'sub-batches of another; check first_doc/first_shard.')
  if sample_weight is not None:
    sample_weight = np.asarray(sample_weight, np.float32)
  batch = plan.step[mine] * num_local + sub
  docs = np.argsort(batch, kind='stable')
  batch = batch[docs]
  g, t, d = plan.num_steps, plan.budget, plan.max_docs
  for g0 in range(0, g, int(chunk_steps)):
    g1 = min(g0 + int(chunk_steps), g)
    lo, hi = np.searchsorted(batch, [g0 * num_local, g1 * num_local])
    at = docs[lo:hi]
    arrays = packing.lay_out(
        x, y, at, batch[lo:hi] - g0 * num_local, plan.pos[mine][at],
        plan.start[mine][at], (g1 - g0) * num_local, t, d, sample_weight,
        step_pos=plan.step_pos[mine][at],
        step_start=plan.step_start[mine][at])
    arrays = {k: v.reshape((g1 - g0, num_local) + v.shape[1:])
              for k, v in arrays.items()}
    yield packing.PackedBatches(uids=arrays.pop('ids'), slot=None, **arrays)
