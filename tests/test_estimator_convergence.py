"""How long LinjaxClassifier.fit trains: the plan in steps and the tol stop.

The rule is scikit-learn's SGDClassifier's (``tol``, ``n_iter_no_change``)
over a run planned from the data (linjax/estimator_convergence.py); the
engine stops when its epoch callback returns True (training.fit).
"""

import math

import numpy as np
import pytest

from linjax.engine import training
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.estimator import LinjaxClassifier
from linjax.estimator_convergence import planned_passes
from linjax.estimator_convergence import ToleranceStop
from linjax.text.csr import from_rows


def _records(losses):
  return [dict(epoch=i + 1, train_loss=v) for i, v in enumerate(losses)]


def test_tolerance_stop_follows_sgdclassifiers_rule():
  # best - tol is the bar; a pass at or above it counts, any pass below
  # resets the count (as sklearn/linear_model/_sgd_fast.pyx).
  losses = [1.0, 0.5, 0.4995, 0.4991, 0.45, 0.4495, 0.4492, 0.4489]
  rule = ToleranceStop(1e-3, n_iter_no_change=3)
  answers = [rule(r) for r in _records(losses)]
  # Pass 3 (0.4995 > 0.5 - 1e-3) and 4 count; 5 resets; 6, 7, 8 count.
  assert answers == [False] * 7 + [True]
  assert rule.stopped and rule.best == pytest.approx(0.4489)
  never = ToleranceStop(None, 1)
  assert not any(never(r) for r in _records([1.0] * 5))
  # A loss that rises counts too.
  rising = ToleranceStop(0.0, 2)
  assert [rising(r) for r in _records([1.0, 1.1, 1.2])] == [False, False, True]


def _toy(n=64, num_features=6, seed=0):
  rng = np.random.default_rng(seed)
  rows = [(rng.choice(num_features, 3, replace=False), rng.uniform(
      0.1, 1.0, 3)) for _ in range(n)]
  return from_rows(rows, num_features), (np.arange(n) % 3).astype(np.int32)


def test_fit_stops_where_the_callback_returns_true():
  x, y = _toy()
  opts = dict(optimizer=OptimizerOptions(learning_rate=0.5),
              training=TrainOptions(epochs=6, max_steps=0,
                                    checkpoint_every=0))
  full = training.fit(x, y, 3, **opts)
  seen = []
  stopped = training.fit(x, y, 3, callback=lambda r: seen.append(
      r['epoch']) or r['epoch'] == 3, **opts)
  assert seen == [1, 2, 3] and stopped.epochs_run == 3
  # The same first three passes (the schedule spans the 6 planned).
  np.testing.assert_array_equal(
      [h['train_loss'] for h in stopped.history],
      [h['train_loss'] for h in full.history[:3]])
  # A callback returning None (or anything but True) never stops it.
  assert training.fit(x, y, 3, callback=lambda r: 1, **opts).epochs_run == 6


def _steps_a_pass(num_docs, nnz, batch_size=32, token_budget=512):
  """The fewest steps packing can take (the engine's run_epochs rule)."""
  return max(num_docs / batch_size, nnz / token_budget)


@pytest.mark.parametrize('num_docs', [150, 2000, 40_000])
def test_planned_passes_count_steps(num_docs):
  # Every document holds 4 entries: T = 512 takes 128, so a pass is
  # N / 32 steps (docs_per_step=0 keeps T at 512).
  x = from_rows([([0, 1, 2, 3], [1.0] * 4)] * num_docs, 8)
  opts = TrainOptions(epochs=8, max_steps=10_000, docs_per_step=0)
  steps = _steps_a_pass(num_docs, 4 * num_docs)
  plan = planned_passes(x, opts, min_steps=1000)
  most = min(8, math.ceil(10_000 / steps))
  least = math.ceil(1000 / steps)
  assert plan.epochs == max(most, least) and plan.max_steps == 0
  assert plan.epochs == {150: 214, 2000: 16, 40_000: 8}[num_docs]
  assert planned_passes(x, opts, min_steps=0).epochs == most


def test_fit_plans_a_small_set_in_steps_and_stops_by_tol():
  rng = np.random.default_rng(0)
  X = rng.normal(size=(150, 4)) * [1.0, 10.0, 100.0, 0.1]
  y = (X[:, 0] + X[:, 1] / 10 + 0.5 * rng.normal(size=150) > 0).astype(int)
  plan = math.ceil(1000 / _steps_a_pass(150, 600))
  full = LinjaxClassifier(tol=None).fit(X, y)
  assert full.n_iter_ == plan == 214
  stopped = LinjaxClassifier().fit(X, y)
  assert 5 < stopped.n_iter_ < plan
  assert len(stopped.fit_result_.history) == stopped.n_iter_
  # Where it stopped, SGDClassifier's rule holds on the recorded losses.
  rule = ToleranceStop(stopped.tol, stopped.n_iter_no_change)
  answers = [rule(h) for h in stopped.fit_result_.history]
  assert answers[-1] and not any(answers[:-1])
  # min_steps=0 and epochs=8: the old fixed run.
  assert LinjaxClassifier(min_steps=0, tol=None).fit(X, y).n_iter_ == 8


def test_partial_fit_is_one_pass_whatever_the_plan():
  rng = np.random.default_rng(1)
  X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
  clf = LinjaxClassifier()
  clf.partial_fit(X, y, classes=[0, 1])
  assert clf.n_iter_ == 1
  clf.partial_fit(X, y)
  assert clf.n_iter_ == 1
