"""Packing documents into fixed-shape minibatches, once per run, on the host.

Shapes: G global steps per epoch, S sub-batches per step, T feature slots
per sub-batch (the token budget), D documents per sub-batch at most (the
batch size), U rows per sub-batch, F features, C classes.

`pack` with S = 1 packs the steps of a run; data-parallel runs split these
same steps over devices and processes (linjax/engine/step_split.py, which
uses `assign` and `lay_out`). `pack`'s own ``num_shards`` (S independent
shards, each shuffled with its own key) is the older layout, kept for its
callers; the engine no longer uses it.

Layout (the one DESIGN.md measured): the documents are shuffled once with the
run's seed and packed greedily, in that order, into sub-batches of at most D
documents and T feature slots, so every step has the same static shape and
nothing is padded to the longest document. Each sub-batch is a flat list of
slots ``(row, weight, doc)``; a document's score is the ``segment_sum`` of its
slots' weighted rows. The engine then shuffles only the ORDER of the packed
steps on device each epoch (a permutation keyed by ``fold_in(seed, epoch)``):
re-packing on the host every epoch cost more than the device work.

Rows: ``uids[s]`` lists the rows of W a sub-batch touches; ``F`` (one past the
last row) is padding, gathered as 0 and dropped when scattered. With
``dedupe=True`` the list is unique per sub-batch (computed here, once) and
``slot`` maps each slot to its position in ``uids``: stateful optimisers and
clipping need each touched row once. With ``dedupe=False`` (plain SGD) every
slot is its own row (``uids`` holds the slot ids, ``slot`` is None): the
scatter-add sums repeated rows, which is exact for SGD and skips the host work.

A document with more than T entries is never truncated: the run's T becomes
the longest document's length (rounded up to a multiple of 8), and the
`PackedBatches.token_budget` reports the value used.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

from linjax.text.csr import CsrFeatures
from linjax.text.csr_store import CsrStore


class PackedBatches(NamedTuple):
  """Host arrays of one run's steps (see module docstring for the layout).

  uids:      int32 [G, S, U]  rows touched (F = padding).
  slot:      int32 [G, S, T]  index into uids of each slot, or None (U == T).
  weights:   float32 [G, S, T] feature value of each slot (0 for padding).
  seg:       int32 [G, S, T]  document position of each slot, D for padding.
  labels:    int32 [G, S, D]  class of each document (0 for padding), or
             uint8 [G, S, D, C] its multi-hot labels (train.loss sigmoid).
  mask:      float32 [G, S, D] the document's weight in the loss (1 unless
             sample weights are given), 0 for padding; a document counts in
             the batch mean where its mask is > 0.
  doc_index: int64 [G, S, D]  index of the document in its shard's input, -1.
  slot_pos:  int32 [G, S, T]  a split step's slot positions in the 1-device
             step (linjax/engine/step_split.py), `PAD_POS` for padding; None.
  doc_pos:   int32 [G, S, D]  the same for its documents; None.
  """

  uids: np.ndarray
  slot: np.ndarray | None
  weights: np.ndarray
  seg: np.ndarray
  labels: np.ndarray
  mask: np.ndarray
  doc_index: np.ndarray
  slot_pos: np.ndarray | None = None
  doc_pos: np.ndarray | None = None

  @property
  def num_steps(self) -> int:
    return int(self.weights.shape[0])

  @property
  def token_budget(self) -> int:
    return int(self.weights.shape[2])

  def device_arrays(self):
    """The arrays the training step reads (no doc_index)."""
    return self._replace(doc_index=None)


# Position of a padding slot or document in `slot_pos` / `doc_pos`: past any
# step, so the step's scatter into the 1-device layout drops it.
PAD_POS = np.iinfo(np.int32).max


def pad_values(num_features: int, max_docs: int) -> dict:
  """The value of each array of `PackedBatches` in an empty step."""
  return dict(uids=num_features, slot=0, weights=0, seg=max_docs, labels=0,
              mask=0, slot_pos=PAD_POS, doc_pos=PAD_POS)


def _round_up(n: int, k: int) -> int:
  return max(k, -(-n // k) * k)


def slot_budget(budget: int, longest: int) -> int:
  """T for a requested budget and the longest document's entry count."""
  return max(int(budget), _round_up(int(longest), 8))


def dedupe_width(token_budget: int) -> int:
  """U that `train.fit` pads de-duplicated row lists to: T rounded up to 8.

  A fixed width (a sub-batch has at most T distinct rows) keeps the compiled
  step independent of the data, so it can be compiled before packing.
  """
  return _round_up(int(token_budget), 8)


_ASSIGN_BLOCK = 1 << 18


def assign(lengths: np.ndarray, budget: int, max_docs: int):
  """Greedy packing: (batch, position in batch, first slot) per document.

  A batch takes the next documents while they fit in ``budget`` slots and
  ``max_docs`` documents (the first always fits: budget >= longest). One
  bisection per batch over the cumulative lengths, not a step per document.
  """
  n = lengths.shape[0]
  ends = np.cumsum(lengths)                     # inclusive, int64 [N]
  firsts = []
  i = 0
  # Python ints for bisect, a block of documents at a time (a list of all
  # N would cost ~36 bytes a document).
  for lo in range(0, n, _ASSIGN_BLOCK):
    hi = min(lo + _ASSIGN_BLOCK, n)
    base_at = max(lo - 1, 0)
    window = ends[base_at:min(hi + max_docs, n)].tolist()
    while i < hi:
      firsts.append(i)
      base = window[i - 1 - base_at] if i else 0
      j = bisect.bisect_right(window, base + budget, i - base_at,
                              min(i + max_docs, n) - base_at) + base_at
      i = max(j, i + 1)
  num = len(firsts)
  firsts = np.asarray(firsts, np.int64)
  counts = np.diff(np.append(firsts, n))
  batch = np.repeat(np.arange(num, dtype=np.int64), counts)
  pos = np.arange(n, dtype=np.int64) - firsts[batch]
  begins = ends - lengths                       # exclusive cumsum
  start = begins - begins[firsts][batch]
  return batch, pos, start, num


def lay_out(x: CsrFeatures, y: np.ndarray, docs: np.ndarray,
            batch: np.ndarray, pos: np.ndarray, start: np.ndarray, num: int,
            budget: int, max_docs: int, sample_weight: np.ndarray | None,
            step_pos: np.ndarray | None = None,
            step_start: np.ndarray | None = None,
            rows: CsrFeatures | None = None) -> dict:
  """Lays documents out in ``num`` batches: dict of [num, T] / [num, D].

  Document ``docs[i]`` (an index into ``x``) goes to batch ``batch[i]`` at
  document position ``pos[i]``, its entries at slots ``start[i]`` onwards.
  With ``step_pos`` and ``step_start`` (int [n], the document's position and
  first slot in its 1-device step) also ``slot_pos`` and ``doc_pos``.
  ``rows``: ``x.take(docs)`` if the caller has it already.
  """
  lengths = x.row_lengths()[docs]
  xs = x.take(docs) if rows is None else rows
  # Flat position in the [num, T] arrays of every entry, in one pass.
  ent = (np.repeat(batch * budget + start - xs.indptr[:-1], lengths) +
         np.arange(xs.nnz, dtype=np.int64))
  ids = np.full((num, budget), x.num_features, np.int32)
  weights = np.zeros((num, budget), np.float32)
  seg = np.full((num, budget), max_docs, np.int32)
  ids.reshape(-1)[ent] = xs.ids
  weights.reshape(-1)[ent] = xs.weights
  seg.reshape(-1)[ent] = np.repeat(pos.astype(np.int32), lengths)
  doc = batch * max_docs + pos
  labels = np.zeros((num, max_docs) + y.shape[1:],
                    y.dtype if y.ndim == 2 else np.int32)
  mask = np.zeros((num, max_docs), np.float32)
  doc_index = np.full((num, max_docs), -1, np.int64)
  labels.reshape((-1,) + y.shape[1:])[doc] = y[docs]
  mask.reshape(-1)[doc] = 1.0 if sample_weight is None else sample_weight[docs]
  doc_index.reshape(-1)[doc] = docs
  out = dict(ids=ids, weights=weights, seg=seg, labels=labels, mask=mask,
             doc_index=doc_index)
  if step_pos is not None:
    out['slot_pos'] = np.full((num, budget), PAD_POS, np.int32)
    out['slot_pos'].reshape(-1)[ent] = (
        np.repeat(step_start - xs.indptr[:-1], lengths) +
        np.arange(xs.nnz, dtype=np.int64))
    out['doc_pos'] = np.full((num, max_docs), PAD_POS, np.int32)
    out['doc_pos'].reshape(-1)[doc] = step_pos
  return out


def _pack_one(x: CsrFeatures, y: np.ndarray, budget: int, max_docs: int,
              rng: np.random.Generator, sample_weight: np.ndarray | None):
  """Packs one shard: dict of [G, T] / [G, D] arrays and the doc order."""
  order = rng.permutation(x.num_docs)
  batch, pos, start, num = assign(x.row_lengths()[order], budget, max_docs)
  return lay_out(x, y, order, batch, pos, start, num, budget, max_docs,
               sample_weight)


def _pad_steps(a: np.ndarray, steps: int, fill) -> np.ndarray:
  if a.shape[0] == steps:
    return a
  pad = np.full((steps - a.shape[0],) + a.shape[1:], fill, a.dtype)
  return np.concatenate([a, pad])


def _dedupe(ids: np.ndarray, num_features: int):
  """Per-step unique rows: uids [G, U] (F padding) and slot [G, T]."""
  g, t = ids.shape
  key = np.arange(g, dtype=np.int64)[:, None] * (num_features + 1) + ids
  uniq, inverse = np.unique(key.reshape(-1), return_inverse=True)
  u_batch = uniq // (num_features + 1)
  counts = np.bincount(u_batch, minlength=g)
  first = np.zeros(g + 1, np.int64)
  np.cumsum(counts, out=first[1:])
  rank = np.arange(uniq.shape[0]) - first[u_batch]
  width = _round_up(int(counts.max()) if g else 1, 8)
  uids = np.full((g, width), num_features, np.int32)
  uids[u_batch, rank] = (uniq % (num_features + 1)).astype(np.int32)
  slot = rank[inverse.reshape(-1)].reshape(g, t).astype(np.int32)
  return uids, slot


def shard_rows(num_docs: int, shard: int, num_shards: int) -> np.ndarray:
  """Indices of the documents of ``shard``: every num_shards-th, from shard."""
  return np.arange(shard, num_docs, num_shards, dtype=np.int64)


def pad_width(packed: PackedBatches, width: int,
              num_features: int) -> PackedBatches:
  """The same steps with T raised to ``width`` (and U to `dedupe_width`).

  Exact: a padding slot has weight 0 and no document (seg = D), so it adds 0
  to every score and to row 0's gradient; a padding row id is F (gathers read
  0, scatters drop it). Lets `train.fit` run a program compiled ahead for a
  wider budget instead of compiling its own.
  """
  extra = int(width) - packed.token_budget
  if extra < 0:
    raise ValueError(f'pad_width: width {width} < T={packed.token_budget}')
  if extra == 0:
    return packed
  slots = ((0, 0), (0, 0), (0, extra))
  if packed.slot is None:  # U == T: the uids are the slots.
    uids, slot = np.pad(packed.uids, slots, constant_values=num_features), None
  else:
    more = max(dedupe_width(width) - packed.uids.shape[-1], 0)
    uids = np.pad(packed.uids, ((0, 0), (0, 0), (0, more)),
                  constant_values=num_features)
    slot = np.pad(packed.slot, slots, constant_values=0)
  return packed._replace(
      uids=uids, slot=slot,
      weights=np.pad(packed.weights, slots, constant_values=0),
      seg=np.pad(packed.seg, slots, constant_values=packed.mask.shape[-1]))


def _checked(x: CsrFeatures, y, sample_weight, name: str):
  """(labels, float32 sample weights or None), or ValueError naming them."""
  y = np.asarray(y)
  if y.shape[:1] != (x.num_docs,) or y.ndim > 2:
    raise ValueError(f'{name}: expected {x.num_docs} labels, got shape '
                     f'{y.shape}.')
  if sample_weight is not None:
    sample_weight = np.asarray(sample_weight, np.float32)
    if sample_weight.shape != (x.num_docs,):
      raise ValueError(f'{name}: expected {x.num_docs} sample weights, got '
                       f'shape {sample_weight.shape}.')
  return y, sample_weight


def pack(x: CsrFeatures, y, *, token_budget: int, max_docs: int,
         seed: int = 0, num_shards: int = 1, shard_offset: int = 0,
         dedupe: bool = True, min_steps: int = 0,
         min_rows: int = 0, sample_weight=None) -> PackedBatches:
  """Packs a corpus into G steps of S = num_shards sub-batches.

  Shard s holds documents ``shard_rows(N, s, num_shards)`` and is shuffled
  with the key (seed, shard_offset + s), so a process that reads only its own
  shard (shard_offset = its first global shard) packs the same sub-batches as
  a single process holding all the data.

  Args:
    x: CsrFeatures with N documents.
    y: int [N] labels, or a multi-hot [N, C] (uint8).
    token_budget: T, feature slots per sub-batch (raised to the longest doc).
    max_docs: D, documents per sub-batch at most.
    seed: shuffling seed.
    num_shards: S, sub-batches per step.
    shard_offset: global index of this host's first shard.
    dedupe: compute unique rows per sub-batch (see module docstring).
    min_steps: pad with empty steps up to this many (to agree across hosts).
    min_rows: pad U up to this many (to agree across hosts).
    sample_weight: float [N] >= 0, each document's weight in the loss (None:
      1); a document of weight 0 takes no part in training.

  Returns:
    PackedBatches (numpy).
  """
  y, sample_weight = _checked(x, y, sample_weight, 'pack')
  longest = int(x.row_lengths().max()) if x.num_docs else 0
  budget = slot_budget(token_budget, longest)
  parts = []
  for s in range(num_shards):
    rng = np.random.default_rng([int(seed), int(shard_offset + s)])
    if num_shards == 1:  # the whole corpus: no copy, doc_index as it is
      part = _pack_one(x, y, budget, max_docs, rng, sample_weight)
    else:
      rows = shard_rows(x.num_docs, s, num_shards)
      part = _pack_one(x.take(rows), y[rows], budget, max_docs, rng,
                       None if sample_weight is None else sample_weight[rows])
      part['doc_index'] = np.where(part['doc_index'] >= 0,
                                   rows[np.maximum(part['doc_index'], 0)], -1)
    parts.append(part)
  steps = max([p['ids'].shape[0] for p in parts] + [int(min_steps), 1])
  fills = dict(ids=x.num_features, weights=0, seg=max_docs, labels=0, mask=0,
               doc_index=-1)
  if num_shards == 1:  # a view with S = 1, no copy
    stacked = {k: _pad_steps(parts[0][k], steps, fills[k])[:, None]
               for k in fills}
  else:
    stacked = {k: np.stack([_pad_steps(p[k], steps, fills[k])
                            for p in parts], axis=1) for k in fills}
  ids = stacked.pop('ids')
  if dedupe:
    flat = ids.reshape(steps * num_shards, budget)
    uids, slot = _dedupe(flat, x.num_features)
    width = max(uids.shape[1], int(min_rows))
    if width > uids.shape[1]:
      uids = np.pad(uids, ((0, 0), (0, width - uids.shape[1])),
                    constant_values=x.num_features)
    uids = uids.reshape(steps, num_shards, width)
    slot = slot.reshape(steps, num_shards, budget)
  else:
    uids, slot = ids, None
  return PackedBatches(uids=uids, slot=slot, **stacked)


def pack_chunks(x: CsrFeatures, y, *, token_budget: int, max_docs: int,
                seed: int = 0, dedupe: bool = True, min_rows: int = 0,
                sample_weight=None, chunk_steps: int = 1024):
  """`pack`'s steps (S = 1) in order, ``chunk_steps`` at a time.

  ``x`` may be a `CsrStore` (features on disk, linjax/text/csr_store.py):
  then each chunk's documents come from one distribution pass over it.
  Host memory stays within a chunk's arrays and the documents' order and
  lengths ([N] each), whatever the corpus size (linjax/engine/spill.py
  writes the chunks to disk).

  Yields:
    (chunk, width): chunk a PackedBatches [k, 1, ...] of the next k steps
    (no doc_index), equal to those of ``pack(x, y, token_budget=,
    max_docs=, seed=, dedupe=, min_rows=, sample_weight=)`` except that the
    row lists ``uids`` are ``max(dedupe_width(T), min_rows)`` wide (as wide
    as any chunk's rows); ``width`` is the chunk's own U, at least
    ``min_rows``. ``pack``'s U is every chunk's largest width: the first U
    columns of ``uids`` are ``pack``'s.
  """
  y, sample_weight = _checked(x, y, sample_weight, 'pack_chunks')
  lengths = x.row_lengths()
  budget = slot_budget(token_budget, int(lengths.max()) if x.num_docs else 0)
  order = np.random.default_rng([int(seed), 0]).permutation(x.num_docs)
  batch, pos, start, num = assign(lengths[order], budget, max_docs)
  steps = max(num, 1)
  first = np.searchsorted(batch, np.arange(steps + 1))
  wide = max(dedupe_width(budget), int(min_rows))
  starts = list(range(0, steps, int(chunk_steps)))
  taken = iter(())
  if isinstance(x, CsrStore):  # on disk: each chunk's rows in one pass
    # Read 2^20 entries (8 MB) at a time: the pass holds a few copies of
    # what it reads (healthtweets x8 out of core: 2^22 at a time was the
    # run's peak, +110 MB).
    taken = x.take_chunks(order, first[starts + [steps]],
                          read_entries=1 << 20)
  for g0 in starts:
    g1 = min(g0 + int(chunk_steps), steps)
    at = slice(first[g0], first[g1])
    arrays = lay_out(x, y, order[at], batch[at] - g0, pos[at], start[at],
                     g1 - g0, budget, max_docs, sample_weight,
                     rows=next(taken, None))
    del arrays['doc_index']
    ids = arrays.pop('ids')
    if dedupe:
      uids, slot = _dedupe(ids, x.num_features)
      width = max(uids.shape[1], int(min_rows))
      uids = np.pad(uids, ((0, 0), (0, wide - uids.shape[1])),
                    constant_values=x.num_features)[:, None]
      slot = slot[:, None]
    else:
      uids, slot, width = ids[:, None], None, budget
    yield PackedBatches(uids=uids, slot=slot, doc_index=None,
                        **{k: v[:, None] for k, v in arrays.items()}), width
