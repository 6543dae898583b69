"""Epochs as host-fed chunks of K steps, and compiling before the data exist."""

from absl.testing import absltest
from absl.testing import parameterized
import dataclasses

import jax
import numpy as np

from linjax.engine import chunk_program as chunks
from linjax.engine import optimizers as optim
from linjax.engine import run_loop
from linjax.engine import step
from linjax.engine import traced_schedule
from linjax.engine import training as train
from test_train import C
from test_train import config
from test_train import corpus
from test_train import F
from test_train import fit


def precompile(opts, num_features, num_classes, **kwargs):
  return train.precompile(num_features, num_classes,
                          optimizer=opts.optimizer, training=opts.training,
                          **kwargs)

OPTIMIZERS = [
    ('sgd', dict(optimizer__name='sgd')),
    ('momentum', dict(optimizer__name='sgd', optimizer__momentum=0.9)),
    ('adam', dict(optimizer__name='adam', optimizer__learning_rate=0.05)),
]


def run_epochs(cfg, x, y, chunk_steps: int, epochs: int = 2):
  """The engine's state after ``epochs`` epochs fed K = chunk_steps a call."""
  training = dataclasses.replace(cfg.training, epochs=epochs,
                                 steps_per_call=chunk_steps)
  run = run_loop.prepare(x, y, C, cfg.optimizer, training, data_parallel=False)
  losses = [l for _, l, _ in run_loop.epochs(run)]
  return run.state, np.concatenate(losses), run.packed.num_steps


class ChunkTest(parameterized.TestCase):

  @parameterized.product(opt=OPTIMIZERS, update=['sparse', 'dense'])
  def test_padded_last_chunk_is_bit_identical(self, opt, update):
    x, y = corpus(seed=31)
    cfg = config(train__update_path=update, train__l2=0.01, **opt[1])
    whole, whole_losses, g = run_epochs(cfg, x, y, chunk_steps=64)
    self.assertLess(g, 64)   # one call an epoch, its tail padded
    for k in (5, g):          # several calls, the last one padded; no padding
      self.assertTrue(k == g or g % k)
      state, losses, _ = run_epochs(cfg, x, y, chunk_steps=k)
      for a, b in zip(jax.tree_util.tree_leaves(state),
                      jax.tree_util.tree_leaves(whole)):
        np.testing.assert_array_equal(a, b)
      np.testing.assert_array_equal(losses, whole_losses)
      self.assertEqual(int(state.step), 2 * g)   # only real steps count

  def test_fit_results_do_not_depend_on_steps_per_call(self):
    x, y = corpus(seed=32)
    a = fit(x, y, config(train__steps_per_call=3)).params
    b = fit(x, y, config(train__steps_per_call=128)).params
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.b, b.b)

  @parameterized.parameters('constant', 'linear', 'exponential', 'cosine',
                            'warmup_cosine')
  def test_traced_schedule_matches_optax(self, kind):
    cfg = config(optimizer__schedule=kind, optimizer__warmup_fraction=0.1)
    total = 37
    spec = step.with_steps(step.make_spec(cfg.optimizer, cfg.training, F, C, 0),
                           total, 0.5, 0.0)
    sched = traced_schedule.schedule_args(spec)
    steps = np.arange(total + 3, dtype=np.int32)
    got = jax.vmap(lambda s: traced_schedule.schedule_shape(
        spec.optimizer, s, sched))(steps)
    want = jax.vmap(optim.make_schedule(cfg.optimizer, total, peak=1.0))(
        steps)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


class PrecompileTest(absltest.TestCase):

  def test_precompile_then_fit_compiles_nothing(self):
    x, y = corpus(seed=33)
    cfg = config(train__epochs=2, train__update_path='sparse')
    chunks.clear_cache()
    before = chunks.TRACE_COUNTS['epoch']
    precompile(cfg, F, C).result()
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 1)
    r = fit(x, y, cfg)
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 1)
    self.assertEqual(r.compile_seconds, 0.0)

  def test_fit_waits_for_compile_in_flight(self):
    x, y = corpus(seed=34)
    cfg = config(train__epochs=2, optimizer__name='adam',
                 optimizer__learning_rate=0.05)
    chunks.clear_cache()
    before = chunks.TRACE_COUNTS['epoch']
    future = precompile(cfg, F, C)   # background thread
    r = fit(x, y, cfg)
    self.assertTrue(future.done())
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 1)
    chunks.clear_cache()
    fresh = fit(x, y, cfg)
    np.testing.assert_array_equal(r.params.W, fresh.params.W)

  def test_fit_after_precompile_of_another_config(self):
    x, y = corpus(seed=35)
    cfg = config(train__epochs=2)
    chunks.clear_cache()
    precompile(config(train__batch_size=8), F, C).result()
    before = chunks.TRACE_COUNTS['epoch']
    r = fit(x, y, cfg)
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 1)   # a miss
    self.assertGreater(r.compile_seconds, 0.0)
    chunks.clear_cache()
    np.testing.assert_array_equal(r.params.W,
                                  fit(x, y, cfg).params.W)

  def test_long_document_misses_unless_announced(self):
    x, y = corpus(seed=36, max_len=40)   # longer than the token budget 24
    longest = int(x.row_lengths().max())
    self.assertGreater(longest, 24)
    cfg = config(train__epochs=1)
    chunks.clear_cache()
    precompile(cfg, F, C).result()
    before = chunks.TRACE_COUNTS['epoch']
    r = fit(x, y, cfg)
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 1)   # a miss
    self.assertTrue(np.all(np.isfinite(r.params.W)))
    chunks.clear_cache()
    precompile(cfg, F, C, max_doc_features=longest).result()
    before = chunks.TRACE_COUNTS['epoch']
    again = fit(x, y, cfg)
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 0)   # a hit
    np.testing.assert_array_equal(r.params.W, again.params.W)

  def test_overestimated_longest_document_pads_instead_of_compiling(self):
    # start_precompile estimates the longest document before min_df prunes
    # it: fit pads its steps to the announced width, with the same result.
    x, y = corpus(seed=37, max_len=40)
    longest = int(x.row_lengths().max())
    for update in ('sparse', 'dense'):
      cfg = config(train__epochs=2, train__update_path=update)
      chunks.clear_cache()
      plain = fit(x, y, cfg)
      chunks.clear_cache()
      precompile(cfg, F, C, max_doc_features=longest + 13).result()
      before = chunks.TRACE_COUNTS['epoch']
      padded = fit(x, y, cfg)
      self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 0)   # a hit
      self.assertEqual(padded.compile_seconds, 0.0)
      np.testing.assert_array_equal(plain.params.W, padded.params.W)
      np.testing.assert_array_equal(plain.params.b, padded.params.b)


class CompilerOptionsTest(absltest.TestCase):

  def test_cpu_optimisation_level_changes_no_number(self):
    self.assertEqual(chunks.compiler_options(),
                     {'xla_backend_optimization_level': 1}
                     if jax.default_backend() == 'cpu' else {})
    x, y = corpus(seed=38)
    cfg = config(train__epochs=2)
    chunks.clear_cache()
    tuned = fit(x, y, cfg)
    saved = dict(chunks.CPU_COMPILER_OPTIONS)
    try:
      chunks.CPU_COMPILER_OPTIONS.clear()   # XLA's default level
      chunks.clear_cache()
      plain = fit(x, y, cfg)
    finally:
      chunks.CPU_COMPILER_OPTIONS.update(saved)
      chunks.clear_cache()
    np.testing.assert_array_equal(tuned.params.W, plain.params.W)
    np.testing.assert_array_equal(tuned.params.b, plain.params.b)


if __name__ == '__main__':
  absltest.main()
