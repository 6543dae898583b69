"""Out of core (engine/spill.py): steps spilled to disk are read back as
they were packed, and train the in-memory model bit for bit."""

import gc
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from linjax.engine import chunk_program
from linjax.engine import distributed
from linjax.engine import packing
from linjax.engine import run_loop
from linjax.engine import spill
from linjax.engine import step_split
from test_scale_split import _corpus
from test_train import config
from test_train import fit

FIELDS = ('uids', 'slot', 'weights', 'seg', 'labels', 'mask', 'slot_pos',
          'doc_pos')


def _read_all(store, num_features):
  return store.gather(np.arange(store.num_steps), store.num_steps,
                      num_features)


def _assert_same_steps(test, got, want):
  for name in FIELDS:
    a, b = getattr(got, name), getattr(want, name)
    test.assertEqual(a is None, b is None, name)
    if a is not None:
      np.testing.assert_array_equal(a, b, name)


def _spilled_fit(x, y, cfg, **kwargs):
  """fit with every run spilled (budget 0); also returns the spill count."""
  with mock.patch.object(spill, 'budget_bytes', return_value=0), \
       mock.patch.object(spill, 'spill_steps',
                         wraps=spill.spill_steps) as spy:
    result = fit(x, y, cfg, **kwargs)
  return result, spy.call_count


class SpilledStepsTest(parameterized.TestCase):

  @parameterized.parameters((True, 0), (True, 40), (False, 0))
  def test_chunks_on_disk_are_packs_steps(self, dedupe, min_rows):
    x, y = _corpus(300, seed=1, max_len=40)
    want = packing.pack(x, y, token_budget=20, max_docs=5, seed=3,
                        dedupe=dedupe, min_rows=min_rows)
    store = spill.spill_steps(packing.pack_chunks(
        x, y, token_budget=20, max_docs=5, seed=3, dedupe=dedupe,
        min_rows=min_rows, chunk_steps=7))
    self.assertEqual(store.num_steps, want.num_steps)
    self.assertEqual(store.batches.uids.shape, want.uids.shape)
    _assert_same_steps(self, _read_all(store, x.num_features), want)
    # Any K steps, in any order, as the in-memory gather gives them.
    order = np.random.default_rng(0).permutation(want.num_steps)[:11]
    _assert_same_steps(
        self, store.gather(order, 16, x.num_features),
        chunk_program.gather_steps(want.device_arrays(), order, 16,
                                   x.num_features))

  def test_split_chunks_on_disk(self):
    x, y = _corpus(200, seed=2)
    plan = step_split.split_plan(x.row_lengths(), [0, 120, 200], 4,
                                 token_budget=20, max_docs=5, seed=0)
    for p, (lo, hi) in enumerate([(0, 120), (120, 200)]):
      kwargs = dict(first_doc=lo, first_shard=2 * p, num_local=2)
      part = x.take(np.arange(lo, hi))
      want = step_split.pack_split(part, y[lo:hi], plan, **kwargs)
      store = spill.spill_steps(step_split.pack_split_chunks(
          part, y[lo:hi], plan, chunk_steps=5, **kwargs))
      _assert_same_steps(self, _read_all(store, x.num_features), want)

  def test_temporary_folder_removed_with_the_steps(self):
    x, y = _corpus(50, seed=4)
    store = spill.spill_steps(packing.pack_chunks(
        x, y, token_budget=20, max_docs=5))
    folder = store.folder
    self.assertTrue(os.path.isdir(folder))
    del store
    gc.collect()
    self.assertFalse(os.path.exists(folder))


class SpilledTrainingTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(train__update_path='sparse'),
      dict(train__update_path='sparse', train__l2=0.01, optimizer__name='adam',
           optimizer__learning_rate=0.05),
      dict(train__update_path='dense', train__l2=0.01),
      dict(train__update_path='sparse', train__class_weight='balanced',
           train__steps_per_call=3))
  def test_spilled_run_is_the_in_memory_run(self, **overrides):
    x, y = _corpus(150, seed=5)
    cfg = config(**overrides)
    want = fit(x, y, cfg)
    got, spilled = _spilled_fit(x, y, cfg)
    self.assertEqual(spilled, 1)
    np.testing.assert_array_equal(got.params.W, want.params.W)
    np.testing.assert_array_equal(got.params.b, want.params.b)
    self.assertEqual([h['train_loss'] for h in got.history],
                     [h['train_loss'] for h in want.history])

  def test_spilled_split_steps_and_multi_label(self):
    x, y = _corpus(150, seed=6)
    mesh = distributed.make_mesh(jax.devices()[:1])
    cfg = config(train__update_path='sparse', train__batch_size=5)
    want = fit(x, y, cfg, mesh=mesh, num_shards=3)
    got, spilled = _spilled_fit(x, y, cfg, mesh=mesh, num_shards=3)
    self.assertEqual(spilled, 1)
    np.testing.assert_array_equal(got.params.W, want.params.W)
    multi_hot = np.eye(3, dtype=np.uint8)[y]
    multi_hot[::3, 1] = 1
    cfg = config(train__loss='sigmoid', train__update_path='sparse')
    want = fit(x, multi_hot, cfg)
    got, spilled = _spilled_fit(x, multi_hot, cfg)
    self.assertEqual(spilled, 1)
    np.testing.assert_array_equal(got.params.W, want.params.W)

  def test_the_budget_decides(self):
    x, y = _corpus(20000, seed=7, max_len=30)
    training = config().training
    spec = run_loop.step_lib.make_spec(config().optimizer, training, 40, 3, 0)
    need = spill.estimate_bytes(x.num_docs, x.nnz, training.token_budget,
                                training.batch_size, spec.dedupe)
    self.assertGreater(need, 1 << 20)
    small = run_loop.dataclasses.replace(training, max_host_mb=1)
    large = run_loop.dataclasses.replace(training,
                                         max_host_mb=2 * need >> 20)
    self.assertTrue(run_loop.spills(x, y, small, spec))
    self.assertFalse(run_loop.spills(x, y, large, spec))
    with mock.patch.object(spill, 'available_bytes', return_value=4 * need):
      self.assertFalse(run_loop.spills(x, y, training, spec))  # 0: a quarter
    with mock.patch.object(spill, 'available_bytes', return_value=2 * need):
      self.assertTrue(run_loop.spills(x, y, training, spec))


if __name__ == '__main__':
  absltest.main()
