"""The estimator's parameters as the library's options, validated in one place.

`LinjaxClassifier` keeps every parameter as a plain keyword of ``__init__``
(scikit-learn's contract); this module maps those keywords onto
`FeaturizerOptions`, `OptimizerOptions` and `TrainOptions` and rewrites the
options' error messages in the estimator's own parameter names; the
estimator's own parameters (how long `fit` runs, the numeric scaling, class
weights) are `EstimatorOptions`, checked the same way. It is apart from
`linjax.estimator` because the mapping is one concept (names and checks),
independent of fitting and predicting.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import re

import numpy as np
from sklearn.utils.validation import check_random_state

from linjax.core.errors import Checker
from linjax.core.errors import ConfigError
from linjax.engine.options import check_decay
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.featurizer_options import FeaturizerOptions



@dataclasses.dataclass(frozen=True)
class EstimatorOptions:
  """The estimator's own parameters (no option of the library has them).

  Attributes:
    tol: `fit` stops once the training loss of ``n_iter_no_change`` passes
      in a row has not fallen below the best so far minus ``tol``
      (SGDClassifier's rule, `linjax.estimator_convergence`); None: never.
    n_iter_no_change: see ``tol``.
    min_steps: `fit` plans at least this many steps: a small training set
      gets more passes than ``epochs``, as many as reach it (0: off).
    standardize: standardise the columns of a dense feature matrix inside
      the estimator (`linjax.estimator_scaling`).
    auto_l2: the estimator's ``l2='auto'``: `fit` takes the penalty from
      the data (`linjax.estimator_scaling.default_l2`); TrainOptions.l2 is
      then 0 until it does.
  """

  tol: float | None = 1e-4
  n_iter_no_change: int = 5
  min_steps: int = 1000
  standardize: bool = True
  auto_l2: bool = True

  def __post_init__(self):
    c = Checker(self, 'estimator')
    if self.tol is not None:
      c.number('tol', lo=0)
    c.integer('n_iter_no_change', lo=1)
    c.integer('min_steps', lo=0)
    c.boolean('standardize')
    c.boolean('auto_l2')
    c.done()


# The estimator's parameters of that name (auto_l2 comes from ``l2``).
ESTIMATOR_PARAMS = ('tol', 'n_iter_no_change', 'min_steps', 'standardize')
FEATURE_PARAMS = tuple(f.name for f in dataclasses.fields(FeaturizerOptions))
# Estimator parameter -> option field, where the names differ.
_OPTIMIZER_RENAMED = {'optimizer': 'name'}
_TRAIN_RENAMED = {'random_state': 'seed', 'update': 'update_path'}
OPTIMIZER_PARAMS = ('optimizer', 'learning_rate', 'schedule', 'momentum',
                    'warmup_fraction', 'decay_rate', 'weight_decay',
                    'clip_norm')
TRAIN_PARAMS = ('batch_size', 'token_budget', 'docs_per_step', 'epochs',
                'max_steps', 'l2', 'update', 'random_state',
                'label_smoothing')
_PARAM_OF_FIELD = {
    **{f'features.{p}': p for p in FEATURE_PARAMS},
    **{f'optimizer.{_OPTIMIZER_RENAMED.get(p, p)}': p
       for p in OPTIMIZER_PARAMS},
    **{f'train.{_TRAIN_RENAMED.get(p, p)}': p for p in TRAIN_PARAMS},
    'train.loss': 'loss',
    **{f'estimator.{p}': p for p in ESTIMATOR_PARAMS}}


def _parameter_names(message: str) -> str:
  """``optimizer.name must ...`` -> ``optimizer must ...`` (our names)."""
  return re.sub(r'\b(?:features|optimizer|train|estimator)\.\w+',
                lambda m: _PARAM_OF_FIELD.get(m.group(0), m.group(0)), message)


def estimator_options(estimator):
  """(FeaturizerOptions, OptimizerOptions, TrainOptions, EstimatorOptions)
  of the parameters.

  Args:
    estimator: a `LinjaxClassifier` (its parameters are read, not changed).

  Raises:
    ConfigError: naming every bad parameter (as the estimator names it).
  """
  seed, problems = estimator.random_state, []
  if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
    try:  # None or a RandomState: draw the seed from it
      seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
    except ValueError:
      problems.append('random_state must be an int >= 0, None or a '
                      f'numpy RandomState, got {seed!r}')
      seed = 0
  l2 = estimator.l2
  auto_l2 = isinstance(l2, str) and l2 == 'auto'
  if isinstance(l2, str) and not auto_l2:
    problems.append(f"l2 must be 'auto' or a number >= 0, got {l2!r}")
  args = [
      (FeaturizerOptions, {p: getattr(estimator, p) for p in FEATURE_PARAMS}),
      (OptimizerOptions, {_OPTIMIZER_RENAMED.get(p, p): getattr(estimator, p)
                          for p in OPTIMIZER_PARAMS}),
      (TrainOptions, {**{_TRAIN_RENAMED.get(p, p): getattr(estimator, p)
                         for p in TRAIN_PARAMS}, 'seed': seed,
                      'l2': 0.0 if isinstance(l2, str) else l2,
                      'loss': ('softmax' if estimator.loss is None
                               else estimator.loss),
                      'patience': 0, 'checkpoint_every': 0}),
      (EstimatorOptions, {**{p: getattr(estimator, p)
                             for p in ESTIMATOR_PARAMS},
                          'auto_l2': auto_l2})]
  options = []
  for cls, kwargs in args:
    try:
      options.append(cls(**kwargs))
    except ConfigError as e:
      problems += e.problems
  weights = estimator.class_weight
  if not (weights is None or isinstance(weights, collections.abc.Mapping)
          or (isinstance(weights, str) and weights == 'balanced')):
    problems.append("class_weight must be None, 'balanced' or a dict "
                    f'{{label: weight}}, got {weights!r}')
  # check_decay waits for the learning rate of the data (`checked_step`).
  if problems:
    problems = [_parameter_names(p) for p in problems]
    raise ConfigError([f'{type(estimator).__name__}: {problems[0]}'] +
                      problems[1:])
  return tuple(options)


def checked_step(estimator, optimizer: OptimizerOptions, step: float,
                 l2: float) -> OptimizerOptions:
  """``optimizer`` with its learning rate times the ``step`` factor of the
  training rows (a feature matrix's, `linjax.estimator_scaling`; 1 for
  texts), checked against ``l2`` as `check_decay` checks it.

  Raises:
    ConfigError: naming ``learning_rate`` and ``l2`` (the estimator's
      names), if a step would flip W's sign at that rate.
  """
  if step != 1.0:
    optimizer = dataclasses.replace(
        optimizer, learning_rate=float(optimizer.learning_rate * step))
  try:
    check_decay(optimizer, l2)
  except ConfigError as e:
    where = '' if step == 1.0 else (
        f' (the learning_rate {estimator.learning_rate:g} times the step '
        f'factor {step:.4g} of the training rows)')
    raise ConfigError(f'{type(estimator).__name__}: '
                      f'{_parameter_names(e.problems[0])}{where}') from None
  return optimizer


def with_loss(estimator, training: TrainOptions, loss) -> TrainOptions:
  """``training`` with another loss (y's kind decided it), its errors in
  the estimator's names (e.g. label_smoothing with a loss that has none)."""
  try:
    return dataclasses.replace(training, loss=loss)
  except ConfigError as e:
    raise ConfigError([f'{type(estimator).__name__}: '
                       f'{_parameter_names(p)}' for p in e.problems]) from None
