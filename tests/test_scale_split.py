"""Splitting the 1-device steps over devices and processes (engine/step_split).

A run on S devices or P processes must visit the steps a 1-device run visits,
with the same documents in each; these tests check the plan and the packed
sub-batches against `packing.pack` and against the CSR they came from, and
that training over S sub-batches on one device gives the 1-device model.
"""

import collections

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from linjax.engine import distributed
from linjax.engine import packing
from linjax.engine import step_split
from linjax.text import csr

F = 40


def _corpus(n, seed=0, max_len=12):
  rng = np.random.default_rng(seed)
  rows = []
  for _ in range(n):
    length = int(rng.integers(0, max_len))
    rows.append((rng.integers(0, F, length), rng.uniform(0.5, 2, length)))
  return csr.from_rows(rows, F), rng.integers(0, 3, n).astype(np.int32)


def _step_docs(packed):
  """{step: sorted document indices} of a PackedBatches."""
  return {g: sorted(packed.doc_index[g][packed.doc_index[g] >= 0].tolist())
          for g in range(packed.num_steps)}


def _bags(packed, x_docs, num_docs):
  """Each document's {feature: weight} rebuilt from the packed slots."""
  bags = collections.defaultdict(collections.Counter)
  g_, s_, _ = packed.weights.shape
  d = packed.labels.shape[-1]
  for g in range(g_):
    for s in range(s_):
      ids = (packed.uids[g, s] if packed.slot is None
             else packed.uids[g, s][packed.slot[g, s]])
      for i, w, q in zip(ids, packed.weights[g, s], packed.seg[g, s]):
        if q < d:
          bags[int(x_docs[packed.doc_index[g, s, q]])][int(i)] += float(w)
        else:
          assert w == 0
  return [bags[i] for i in range(num_docs)]


def _csr_bags(x):
  out = []
  for i in range(x.num_docs):
    c = collections.Counter()
    for f, w in zip(x.ids[x.indptr[i]:x.indptr[i + 1]],
                    x.weights[x.indptr[i]:x.indptr[i + 1]]):
      c[int(f)] += float(w)
    out.append(c)
  return out


class SplitPlanTest(parameterized.TestCase):

  def test_hand_worked_step(self):
    # One step of 5 documents over 2 sub-batches, dealt longest first in
    # snake order: 5 -> 0, 4 -> 1, 3 -> 1, 1 -> 0, 1 -> 0. Sub-batch 0 holds
    # three documents (7 slots), sub-batch 1 two (7 slots): D_s = 3, T_s = 8.
    plan = step_split.split_plan([3, 1, 4, 1, 5], [0, 5], 2, token_budget=16,
                              max_docs=5, seed=0)
    np.testing.assert_array_equal(plan.step, 0)
    np.testing.assert_array_equal(plan.sub, [1, 0, 1, 0, 0])
    self.assertEqual((plan.num_steps, plan.max_docs, plan.budget), (1, 3, 8))
    for sub in (0, 1):
      mine = np.flatnonzero(plan.sub == sub)
      order = mine[np.argsort(plan.pos[mine])]
      lengths = np.array([3, 1, 4, 1, 5])[order]
      np.testing.assert_array_equal(plan.pos[order], np.arange(order.size))
      np.testing.assert_array_equal(plan.start[order],
                                    np.cumsum(lengths) - lengths)

  @parameterized.parameters(
      (2, (0, 61)), (3, (0, 61)), (8, (0, 61)),
      (2, (0, 50, 61)), (4, (0, 7, 61)), (6, (0, 30, 30, 61)))
  def test_same_steps_as_one_device(self, num_shards, bounds):
    x, y = _corpus(61, seed=num_shards)
    one = packing.pack(x, y, token_budget=20, max_docs=5, seed=3)
    plan = step_split.split_plan(x.row_lengths(), bounds, num_shards,
                              token_budget=20, max_docs=5, seed=3)
    self.assertEqual(plan.num_steps, one.num_steps)
    self.assertLessEqual(plan.budget, one.token_budget)
    lengths = x.row_lengths()
    # Same documents in each step as the 1-device packing.
    want = _step_docs(one)
    got = collections.defaultdict(list)
    for doc, g in enumerate(plan.step):
      got[int(g)].append(doc)
    self.assertEqual({g: sorted(v) for g, v in got.items()},
                     {g: v for g, v in want.items() if v})
    # Each document in a sub-batch of its own process, within the budgets,
    # and no two documents of a sub-batch share a position or a slot.
    ways = num_shards // (len(bounds) - 1)
    owner = np.searchsorted(bounds, np.arange(61), side='right') - 1
    np.testing.assert_array_equal(plan.sub // ways, owner)
    self.assertTrue(np.all(plan.pos < plan.max_docs))
    self.assertTrue(np.all(plan.start + lengths <= plan.budget))
    slots = collections.Counter()
    for doc in range(61):
      key = (int(plan.step[doc]), int(plan.sub[doc]))
      self.assertNotIn(key + ('pos', int(plan.pos[doc])), slots)
      slots[key + ('pos', int(plan.pos[doc]))] += 1
      for t in range(plan.start[doc], plan.start[doc] + lengths[doc]):
        self.assertNotIn(key + (int(t),), slots)
        slots[key + (int(t),)] += 1

  def test_uneven_steps_fill_floor_or_ceil(self):
    # 5 documents a step over 3 sub-batches: 2, 2, 1 of them (one process).
    x, _ = _corpus(40, seed=1)
    plan = step_split.split_plan(x.row_lengths(), [0, 40], 3, token_budget=500,
                              max_docs=5, seed=0)
    counts = collections.Counter(zip(plan.step.tolist(), plan.sub.tolist()))
    for g in range(plan.num_steps):
      per_sub = sorted(counts[(g, s)] for s in range(3))
      self.assertEqual(per_sub, [1, 2, 2])
    self.assertEqual(plan.max_docs, 2)

  def test_a_process_with_fewer_documents(self):
    # Process 1 holds 3 of 40 documents: most of its sub-batches are empty,
    # both processes see the same steps and shapes.
    x, y = _corpus(40, seed=2)
    plan = step_split.split_plan(x.row_lengths(), [0, 37, 40], 2,
                              token_budget=30, max_docs=4, seed=0)
    parts = [step_split.pack_split(x.take(np.arange(lo, hi)), y[lo:hi], plan,
                                first_doc=lo, first_shard=p, num_local=1)
             for p, (lo, hi) in enumerate([(0, 37), (37, 40)])]
    self.assertEqual(parts[0].weights.shape, parts[1].weights.shape)
    self.assertEqual(int((parts[1].doc_index >= 0).sum()), 3)
    self.assertGreater(int((parts[1].mask.sum(axis=(1, 2)) == 0).sum()),
                       plan.num_steps - 4)

  @parameterized.parameters((0, 61), (0, 20, 61), (0, 0, 61))
  def test_packed_sub_batches_hold_exactly_each_document(self, *bounds):
    x, y = _corpus(61, seed=5)
    num_proc = len(bounds) - 1
    ways = 2
    plan = step_split.split_plan(x.row_lengths(), bounds, ways * num_proc,
                                 token_budget=16, max_docs=4, seed=1)
    want = _csr_bags(x)
    for p in range(num_proc):
      lo, hi = bounds[p], bounds[p + 1]
      part = step_split.pack_split(x.take(np.arange(lo, hi)), y[lo:hi], plan,
                                   first_doc=lo, first_shard=p * ways,
                                   num_local=ways)
      self.assertEqual(part.weights.shape,
                       (plan.num_steps, ways, plan.budget))
      self.assertEqual(part.labels.shape[-1], plan.max_docs)
      docs = part.doc_index[part.doc_index >= 0]
      np.testing.assert_array_equal(np.sort(docs), np.arange(hi - lo))
      np.testing.assert_array_equal(part.labels[part.doc_index >= 0],
                                    y[lo:hi][docs])
      np.testing.assert_array_equal(part.mask, part.doc_index >= 0)
      got = _bags(part, np.arange(lo, hi), 61)
      for doc in range(lo, hi):
        self.assertEqual(set(got[doc]), set(want[doc]))
        for f, w in want[doc].items():
          self.assertAlmostEqual(got[doc][f], w, places=5)

  @parameterized.parameters((2, (0, 61)), (8, (0, 61)), (4, (0, 13, 61)),
                            (3, (0, 30, 30, 61)))
  def test_positions_rebuild_the_one_device_step(self, num_shards, bounds):
    # Scattering every process's slots to slot_pos and documents to doc_pos
    # gives back packing.pack's 1-device step, slot for slot: the order in
    # which the training step sums a step's gradients.
    x, y = _corpus(61, seed=num_shards)
    one = packing.pack(x, y, token_budget=20, max_docs=5, seed=3,
                       dedupe=False)
    plan = step_split.split_plan(x.row_lengths(), bounds, num_shards,
                                 token_budget=20, max_docs=5, seed=3)
    self.assertEqual((plan.step_budget, plan.step_docs),
                     (one.token_budget, 5))
    g, t = one.num_steps, one.token_budget
    ids = np.full((g, t), F, np.int32)
    weights = np.zeros((g, t), np.float32)
    seg = np.full((g, t), 5, np.int32)
    labels = np.zeros((g, 5), np.int32)
    mask = np.zeros((g, 5), np.float32)
    ways = num_shards // (len(bounds) - 1)
    for p in range(len(bounds) - 1):
      lo, hi = bounds[p], bounds[p + 1]
      part = step_split.pack_split(x.take(np.arange(lo, hi)), y[lo:hi], plan,
                                   first_doc=lo, first_shard=p * ways,
                                   num_local=ways)
      for step in range(g):
        real = part.slot_pos[step] != packing.PAD_POS
        at = part.slot_pos[step][real]
        self.assertEqual(len(set(at.tolist())), at.size)
        ids[step, at] = part.uids[step][real]
        weights[step, at] = part.weights[step][real]
        doc_pos = np.append(part.doc_pos[step], np.full(
            (part.doc_pos.shape[1], 1), 5), axis=1)  # seg = D_s: padding
        seg[step, at] = np.take_along_axis(doc_pos, part.seg[step],
                                           axis=1)[real]
        real_docs = part.doc_pos[step] != packing.PAD_POS
        labels[step, part.doc_pos[step][real_docs]] = (
            part.labels[step][real_docs])
        mask[step, part.doc_pos[step][real_docs]] = part.mask[step][real_docs]
    np.testing.assert_array_equal(ids, one.uids[:, 0])
    np.testing.assert_array_equal(weights, one.weights[:, 0])
    np.testing.assert_array_equal(seg, one.seg[:, 0])
    np.testing.assert_array_equal(labels, one.labels[:, 0])
    np.testing.assert_array_equal(mask, one.mask[:, 0])

  def test_assign_in_blocks_is_assign_at_once(self):
    # packing.assign converts the cumulative lengths to Python ints a block
    # at a time (bounded memory); the batches must not depend on the block.
    from unittest import mock  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    for _ in range(50):
      lengths = rng.integers(0, 30, int(rng.integers(0, 300)))
      budget = int(rng.integers(max(lengths.max(initial=0), 1), 80))
      max_docs = int(rng.integers(1, 9))
      want = packing.assign(lengths, budget, max_docs)
      with mock.patch.object(packing, '_ASSIGN_BLOCK', 7):
        got = packing.assign(lengths, budget, max_docs)
      for a, b in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(a, b)
      self.assertEqual(got[3], want[3])

  def test_bad_bounds_and_shards_are_refused(self):
    with self.assertRaisesRegex(ValueError, 'bounds'):
      step_split.split_plan([1, 2, 3], [0, 2], 2, token_budget=8, max_docs=2)
    with self.assertRaisesRegex(ValueError, 'multiple'):
      step_split.split_plan([1, 2, 3], [0, 1, 3], 3, token_budget=8, max_docs=2)


class SubBatchTrainingTest(parameterized.TestCase):
  """S sub-batches on one device (vmapped) train the S = 1 model: bit for bit
  with plain SGD (the step sums in the 1-device order), within float
  rounding with Adam and on the dense path."""

  @parameterized.parameters('sgd', 'adam', 'dense')
  def test_num_shards_leaves_the_model(self, name):
    import distributed_worker  # pylint: disable=g-import-not-at-top
    x, y = distributed_worker.data()
    mesh = distributed.make_mesh(jax.devices()[:1])
    want = distributed_worker._fit(x, y, name, x, y, mesh)  # pylint: disable=protected-access
    for shards in (3, 8):
      from test_train import fit  # pylint: disable=g-import-not-at-top
      got = fit(x, y, distributed_worker.cfg_for(name), mesh=mesh,
                num_shards=shards).params
      if name == 'sgd':
        np.testing.assert_array_equal(got.W, want[0])
        np.testing.assert_array_equal(got.b, want[1])
      scale = np.abs(want[0]).max()
      self.assertLess(np.abs(got.W - want[0]).max(), 1e-4 * scale)
      self.assertLess(np.abs(got.b - want[1]).max(), 1e-4)

  def test_multi_label_sub_batches_train_the_same_model(self):
    import distributed_worker  # pylint: disable=g-import-not-at-top
    from test_train import config, fit  # pylint: disable=g-import-not-at-top
    x, y = distributed_worker.data()
    multi_hot = np.eye(3, dtype=np.uint8)[y]
    multi_hot[::4, 0] = 1   # some documents have two labels
    cfg = config(train__loss='sigmoid', train__batch_size=5,
                 train__update_path='sparse')
    mesh = distributed.make_mesh(jax.devices()[:1])
    want = fit(x, multi_hot, cfg, mesh=mesh).params
    got = fit(x, multi_hot, cfg, mesh=mesh, num_shards=4).params
    np.testing.assert_array_equal(got.W, want.W)
    np.testing.assert_array_equal(got.b, want.b)


if __name__ == '__main__':
  absltest.main()
