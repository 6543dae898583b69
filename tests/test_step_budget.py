"""The rules `fit` applies to its data: train.docs_per_step, train.max_steps.

`training.step_budget` raises the slot budget T to k documents of the mean
length (a power of two) when T holds fewer; `precompile` given an estimate
of the mean compiles the program `fit` then runs. `training.run_epochs`
ends the run after ``max_steps`` steps, rounded up to a whole pass.
"""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from linjax.engine import chunk_program as chunks
from linjax.engine import packing
from linjax.engine import training as train
from linjax.engine.options import TrainOptions
from test_train import C
from test_train import config
from test_train import corpus
from test_train import F
from test_train import fit


class StepBudgetTest(parameterized.TestCase):

  @parameterized.parameters(
      # (docs_per_step, batch_size, token_budget, mean, expected T)
      (0, 32, 512, 800.0, 512),      # off
      (8, 32, 512, 800.0, 8192),     # 6400 -> the next power of two
      (8, 32, 512, 512.0, 4096),     # 4096 exactly
      (8, 32, 512, 30.0, 512),       # 240 < token_budget: unchanged
      (8, 32, 512, 64.0, 512),       # 512 fits in token_budget
      (8, 32, 512, 64.5, 1024),      # 516 does not
      (8, 32, 600, 80.0, 1024),      # 640: a power of two above 600
      (8, 4, 512, 800.0, 4096),      # k is at most batch_size: 3200 -> 4096
      (8, 32, 512, 0.0, 512),        # mean unknown
      (1, 32, 1, 0.3, 1),
  )
  def test_rule(self, k, batch, budget, mean, expected):
    training = TrainOptions(docs_per_step=k, batch_size=batch,
                            token_budget=budget)
    self.assertEqual(train.step_budget(training, mean), expected)

  @parameterized.parameters(
      # (epochs, max_steps, N, nnz, T, expected passes); batch_size 32
      (8, 0, 50_000, 1_500_000, 512, 8),       # off
      (8, 10_000, 50_000, 1_500_000, 512, 4),  # 2930 steps a pass: 3.4 -> 4
      (8, 10_000, 50_000, 500_000, 512, 7),    # N / 32 = 1562.5 steps: 6.4
      (8, 10_000, 8_000, 450_000, 512, 8),     # 879 steps: 11.4, at most 8
      (8, 10_000, 10**7, 10**8, 512, 1),       # at least one pass
      (8, 10_000, 0, 0, 512, 8),               # no data: the loop decides
      (3, 10_000, 2_000, 1_600_000, 8192, 3),  # 195 steps: 51 -> epochs
  )
  def test_epochs_rule(self, epochs, max_steps, n, nnz, budget, expected):
    training = TrainOptions(epochs=epochs, max_steps=max_steps)
    self.assertEqual(train.run_epochs(training, n, nnz, budget), expected)

  def test_fit_stops_at_max_steps_rounded_to_a_pass(self):
    x, y = corpus(n=96, seed=44)   # short documents: batch_size decides
    cfg = config(train__epochs=6, train__batch_size=8, train__max_steps=30,
                 train__token_budget=256)
    ruled = fit(x, y, cfg)
    # 96 / 8 = 12 steps a pass (the packing's too): 30 steps -> 3 passes.
    self.assertEqual(ruled.steps, 12)
    self.assertEqual(ruled.epochs_run, 3)
    by_hand = fit(x, y, config(train__epochs=3, train__batch_size=8,
                               train__token_budget=256))
    np.testing.assert_array_equal(ruled.params.W, by_hand.params.W)
    self.assertEqual([h['train_loss'] for h in ruled.history],
                     [h['train_loss'] for h in by_hand.history])

  def test_negative_values_name_the_option(self):
    with self.assertRaisesRegex(ValueError, 'train.docs_per_step'):
      TrainOptions(docs_per_step=-1)
    with self.assertRaisesRegex(ValueError, 'train.max_steps'):
      TrainOptions(max_steps=-1)

  def test_fit_packs_k_documents_a_step_and_equals_that_budget(self):
    x, y = corpus(n=96, seed=41, max_len=40)   # mean ~21 entries, T 24
    mean = x.nnz / x.num_docs
    cfg = config(train__epochs=2, train__batch_size=16,
                 train__docs_per_step=4)
    ruled = fit(x, y, cfg)
    expected = 1 << int(np.ceil(np.log2(4 * mean)))
    self.assertEqual(ruled.token_budget, expected)
    # The packing at that T averages k..2k documents a step.
    packed = packing.pack(x, y, token_budget=expected, max_docs=16,
                          dedupe=False)
    docs = (packed.mask > 0).sum() / packed.num_steps
    self.assertTrue(4 <= docs <= 8, docs)
    self.assertEqual(ruled.steps, packed.num_steps)
    # The rule only chooses T: the same model as T set by hand.
    by_hand = fit(x, y, config(train__epochs=2, train__batch_size=16,
                               train__token_budget=expected,
                               train__docs_per_step=0))
    np.testing.assert_array_equal(ruled.params.W, by_hand.params.W)
    np.testing.assert_array_equal(ruled.params.b, by_hand.params.b)
    plain = fit(x, y, config(train__epochs=2, train__batch_size=16,
                             train__docs_per_step=0))
    self.assertLess(plain.token_budget, expected)
    self.assertGreater(plain.steps, ruled.steps)

  def test_precompile_with_the_mean_compiles_what_fit_runs(self):
    x, y = corpus(n=96, seed=42, max_len=40)
    cfg = config(train__epochs=1, train__docs_per_step=4)
    mean = x.nnz / x.num_docs
    longest = int(x.row_lengths().max())
    chunks.clear_cache()
    # An estimate 15 % high still lands on the same power of two here.
    self.assertEqual(train.step_budget(cfg.training, 1.15 * mean),
                     train.step_budget(cfg.training, mean))
    train.precompile(F, C, optimizer=cfg.optimizer, training=cfg.training,
                     max_doc_features=longest,
                     mean_doc_features=1.15 * mean).result()
    before = chunks.TRACE_COUNTS['epoch']
    r = fit(x, y, cfg)
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 0)   # a hit
    self.assertEqual(r.compile_seconds, 0.0)
    chunks.clear_cache()
    train.precompile(F, C, optimizer=cfg.optimizer, training=cfg.training,
                     max_doc_features=longest).result()   # mean unknown
    before = chunks.TRACE_COUNTS['epoch']
    fit(x, y, cfg)
    self.assertEqual(chunks.TRACE_COUNTS['epoch'] - before, 1)   # a miss

  def test_run_options_change_only_the_token_budget(self):
    x, y = corpus(n=96, seed=43, max_len=40)
    cfg = config(train__epochs=1, train__docs_per_step=4)
    chosen = train.run_options(x, cfg.training)
    self.assertEqual(chosen.token_budget,
                     train.step_budget(cfg.training, x.nnz / x.num_docs))
    self.assertEqual(dataclasses.replace(chosen, token_budget=24),
                     cfg.training)
    limited = dataclasses.replace(cfg.training, epochs=5, max_steps=1)
    self.assertEqual(train.run_options(x, limited).epochs, 1)


if __name__ == '__main__':
  absltest.main()
