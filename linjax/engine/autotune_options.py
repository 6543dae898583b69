"""What `linjax.engine.autotune` searches and for how long.

`AutotuneOptions` is validated in one place (``__post_init__``, with
`linjax.core.errors.Checker`): a bad value raises `ConfigError` naming the
field as ``autotune.x``; experiments/autotune.py names the flag instead.
"""

from __future__ import annotations

import dataclasses
import math

from linjax.core.errors import Checker


@dataclasses.dataclass(frozen=True)
class AutotuneOptions:
  """What `autotune` searches and for how long (flags of the runner).

  Attributes:
    time_budget: seconds for the search (ignored when ``num_configs`` > 0).
    seed: draws of configurations and subsamples (training order keeps
      ``train.seed``).
    learning_rate: (low, high) of the log-uniform learning rate; empty:
      (lr / 16, 4 lr) around ``optimizer.learning_rate``.
    l2: (low, high) of the log-uniform non-zero L2 strengths.
    l2_zero: the share of draws with L2 = 0.
    epochs: the epoch counts to choose from.
    eta: each rung keeps 1/eta of the configurations, with eta times the data.
    max_rungs: rungs per bracket at most (1: plain random search).
    min_docs: documents of the first rung's subsample, at least.
    max_models: M, configurations per vmapped batch at most.
    memory_mb: the M training states (W rows and optimiser state) at most.
    num_configs: > 0: a fixed plan of this many first-rung configurations
      per bracket, whatever the time; 0: as many as the budget allows.
    brackets: > 0: stop after this many brackets; 0: while time is left.
  """

  time_budget: float = 60.0
  seed: int = 0
  learning_rate: tuple = ()
  l2: tuple = (1e-8, 1e-4)
  l2_zero: float = 0.25
  epochs: tuple = (1, 2, 3, 4, 6, 8, 12, 16)
  eta: int = 3
  max_rungs: int = 3
  min_docs: int = 1000
  max_models: int = 16
  memory_mb: float = 1024.0
  num_configs: int = 0
  brackets: int = 0

  def __post_init__(self):
    c = Checker(self, 'autotune')
    c.number('time_budget', lo=0, lo_open=True)
    c.integer('seed', lo=0)
    for name in ('learning_rate', 'l2'):
      value = getattr(self, name)
      ok = isinstance(value, (tuple, list)) and (
          (name == 'learning_rate' and len(value) == 0) or
          (len(value) == 2 and all(isinstance(v, (int, float)) and
                                   math.isfinite(v) and v > 0 for v in value)
           and value[0] <= value[1]))
      if not ok:
        c.fail(name, 'must be (low, high) with 0 < low <= high' +
               (' or empty' if name == 'learning_rate' else ''), value)
    c.number('l2_zero', lo=0, hi=1)
    if (not isinstance(self.epochs, (tuple, list)) or not self.epochs or
        not all(isinstance(e, int) and e >= 1 for e in self.epochs)):
      c.fail('epochs', 'must be a non-empty list of integers >= 1',
             self.epochs)
    c.integer('eta', lo=2)
    c.integer('max_rungs', lo=1)
    c.integer('min_docs', lo=1)
    c.integer('max_models', lo=1)
    c.number('memory_mb', lo=0, lo_open=True)
    c.integer('num_configs', lo=0)
    c.integer('brackets', lo=0)
    c.done()
