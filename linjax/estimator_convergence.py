"""How long `LinjaxClassifier.fit` trains: a plan from the data and a stop.

scikit-learn's `SGDClassifier` makes up to ``max_iter`` passes (1000) and
ends once the training loss has failed ``n_iter_no_change`` passes in a row
to fall below the best so far minus ``tol``. linjax's learning rate decays
linearly to zero over the planned run (fastText's schedule: the texts'
defaults were validated with it), so the run needs a planned length:

* `planned_passes`: ``epochs`` passes, fewer on a large training set
  (``max_steps``, the engine's rule), more on a small one (``min_steps``):
  SGD's progress is counted in steps, and 8 passes over 150 rows are 40.
* `ToleranceStop`: SGDClassifier's rule over the engine's per-epoch record,
  whose ``train_loss`` is the mean over the pass's steps of each step's
  (weighted) batch loss, taken before the step's update, as SGDClassifier
  sums its losses during a pass. It is the ``callback`` of
  `linjax.engine.training.fit`, which stops when it returns True.

A run that completes its plan has annealed its learning rate to zero: it
ends there without SGDClassifier's ConvergenceWarning.
"""

from __future__ import annotations

import dataclasses
import math

from linjax.engine import training as engine
from linjax.engine.options import TrainOptions
from linjax.text.csr import CsrFeatures


class ToleranceStop:
  """SGDClassifier's stopping rule, as an epoch callback.

  Attributes:
    tol: the improvement a pass must make on the best loss (None: never
      stop early).
    n_iter_no_change: passes in a row without it before stopping.
    stopped: whether the rule stopped the training.
  """

  def __init__(self, tol: float | None, n_iter_no_change: int):
    self.tol = tol
    self.n_iter_no_change = n_iter_no_change
    self.best = math.inf
    self.no_improvement = 0
    self.stopped = False

  def __call__(self, record: dict) -> bool:
    """True once the loss of ``n_iter_no_change`` passes in a row has
    not fallen below ``best - tol``."""
    if self.tol is None:
      return False
    loss = float(record['train_loss'])
    if loss > self.best - self.tol:
      self.no_improvement += 1
    else:
      self.no_improvement = 0
    self.best = min(self.best, loss)
    self.stopped = self.no_improvement >= self.n_iter_no_change
    return self.stopped


def planned_passes(x: CsrFeatures, training: TrainOptions,
                   min_steps: int) -> TrainOptions:
  """``training`` with the passes `fit` plans on ``x`` as its ``epochs``.

  ``training.epochs``, fewer where they exceed ``training.max_steps``
  steps (`linjax.engine.training.run_epochs`), but at least as many as
  reach ``min_steps`` steps: a pass counts ``max(N / batch_size, entries /
  T)`` steps, the fewest its packing can take. SGD's progress is counted
  in steps; a training set of 150 rows makes 5 steps a pass, so 8 passes
  would stop it after 40.

  Returns:
    TrainOptions with ``epochs`` the plan and ``max_steps`` 0 (the plan is
    final; the slot budget T is left to `fit`, which gets the same).
  """
  most = engine.run_options(x, training).epochs
  least = engine.run_options(x, dataclasses.replace(
      training, epochs=max(min_steps, 1), max_steps=min_steps)).epochs
  passes = max(most, least) if min_steps > 0 else most
  return dataclasses.replace(training, epochs=passes, max_steps=0)
