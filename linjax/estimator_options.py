"""The estimator's parameters as the library's options, validated in one place.

`LinjaxClassifier` keeps every parameter as a plain keyword of ``__init__``
(scikit-learn's contract); this module maps those keywords onto
`FeaturizerOptions`, `OptimizerOptions` and `TrainOptions` and rewrites the
options' error messages in the estimator's own parameter names. It is apart
from `linjax.estimator` because the mapping is one concept (names and
checks), independent of fitting and predicting.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import re

import numpy as np
from sklearn.utils.validation import check_random_state

from linjax.core.errors import ConfigError
from linjax.engine.options import check_decay
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.featurizer_options import FeaturizerOptions

FEATURE_PARAMS = tuple(f.name for f in dataclasses.fields(FeaturizerOptions))
# Estimator parameter -> option field, where the names differ.
_OPTIMIZER_RENAMED = {'optimizer': 'name'}
_TRAIN_RENAMED = {'random_state': 'seed', 'update': 'update_path'}
OPTIMIZER_PARAMS = ('optimizer', 'learning_rate', 'schedule', 'momentum',
                    'warmup_fraction', 'decay_rate', 'weight_decay',
                    'clip_norm')
TRAIN_PARAMS = ('batch_size', 'token_budget', 'docs_per_step', 'epochs',
                'max_steps', 'l2', 'update', 'random_state')
_PARAM_OF_FIELD = {
    **{f'features.{p}': p for p in FEATURE_PARAMS},
    **{f'optimizer.{_OPTIMIZER_RENAMED.get(p, p)}': p
       for p in OPTIMIZER_PARAMS},
    **{f'train.{_TRAIN_RENAMED.get(p, p)}': p for p in TRAIN_PARAMS}}


def _parameter_names(message: str) -> str:
  """``optimizer.name must ...`` -> ``optimizer must ...`` (our names)."""
  return re.sub(r'\b(?:features|optimizer|train)\.\w+',
                lambda m: _PARAM_OF_FIELD.get(m.group(0), m.group(0)), message)


def estimator_options(estimator):
  """(FeaturizerOptions, OptimizerOptions, TrainOptions) of the parameters.

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
  args = [
      (FeaturizerOptions, {p: getattr(estimator, p) for p in FEATURE_PARAMS}),
      (OptimizerOptions, {_OPTIMIZER_RENAMED.get(p, p): getattr(estimator, p)
                          for p in OPTIMIZER_PARAMS}),
      (TrainOptions, {**{_TRAIN_RENAMED.get(p, p): getattr(estimator, p)
                         for p in TRAIN_PARAMS}, 'seed': seed,
                      'patience': 0, 'checkpoint_every': 0})]
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
  if not problems:
    try:
      check_decay(options[1], options[2].l2)
    except ConfigError as e:
      problems += e.problems
  if problems:
    problems = [_parameter_names(p) for p in problems]
    raise ConfigError([f'{type(estimator).__name__}: {problems[0]}'] +
                      problems[1:])
  return tuple(options)
