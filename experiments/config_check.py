"""Validation of an experiment config before any work is done.

`validate(config)` checks every key of `experiments/configs/default.py` that a
user can get wrong and raises `ConfigError` naming the flag, e.g.

  --config.optimizer.learning_rate must be > 0, got -1

so that a bad value fails in milliseconds instead of after featurisation.
All problems are collected and reported together on one line (the first in
full, the others after it), and listed in ``error.problems``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
from typing import Any

from linjax.data import corpus as data
from linjax.engine import optimizers as optim
from linjax.text import featurizer as text

TOKENIZERS = text.TOKENIZERS
WEIGHTINGS = text.WEIGHTINGS
NORMALIZATIONS = text.NORMALIZATIONS
FORMATS = ('',) + tuple(data.FORMATS)
OPTIMIZERS = optim.OPTIMIZERS
SCHEDULES = optim.SCHEDULES
UPDATES = ('auto', 'sparse', 'dense')
METRICS = ('accuracy', 'loss')


class ConfigError(optim.ConfigError):
  """A config value is invalid; the message names the flag.

  A subclass of the engine's `linjax.optim.ConfigError`, so one ``except``
  catches both.
  """


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _fmt(v) -> str:
  return repr(v) if isinstance(v, str) else str(v)


class _Checker:
  """Collects problems as 'FLAG must ..., got VALUE' strings."""

  def __init__(self, config, prefix: str):
    self.config = config
    self.prefix = prefix
    self.problems: list[str] = []

  def get(self, key: str) -> tuple[bool, Any]:
    node = self.config
    for part in key.split('.'):
      try:
        node = node[part]
      except (KeyError, TypeError, AttributeError):
        return False, None
    return True, node

  def fail(self, key: str, requirement: str, value) -> None:
    self.problems.append(f'{self.prefix}{key} {requirement}, got '
                         f'{_fmt(value)}')

  def number(self, key: str, lo=None, hi=None, lo_open=False, hi_open=False,
             integer=False) -> None:
    """``lo (<|<=) value (<|<=) hi``; absent keys are not checked."""
    present, v = self.get(key)
    if not present:
      return
    if integer and not _is_int(v):
      return self.fail(key, 'must be an integer', v)
    if not _is_number(v) or not math.isfinite(v):
      return self.fail(key, 'must be a finite number', v)
    if lo is not None and (v <= lo if lo_open else v < lo):
      return self.fail(key, f'must be {">" if lo_open else ">="} {lo}', v)
    if hi is not None and (v >= hi if hi_open else v > hi):
      return self.fail(key, f'must be {"<" if hi_open else "<="} {hi}', v)

  def fraction(self, key: str) -> None:
    present, v = self.get(key)
    if present and (not _is_number(v) or not 0 <= v < 1):
      self.fail(key, 'must be a fraction in [0, 1)', v)

  def choice(self, key: str, allowed) -> None:
    present, v = self.get(key)
    if present and v not in allowed:
      names = ', '.join(repr(a) for a in allowed)
      self.fail(key, f'must be one of {names}', v)

  def path(self, key: str) -> None:
    present, v = self.get(key)
    if not present or v in ('', None):
      return
    if not isinstance(v, str):
      return self.fail(key, 'must be a path', v)
    if not os.path.exists(v):
      self.fail(key, 'must name an existing file or folder (not found)', v)


def validate(config, prefix: str = '--config.') -> None:
  """Raises `ConfigError` if any value in ``config`` is invalid.

  Args:
    config: an `ml_collections.ConfigDict` (or nested dict) with the sections
      of `experiments/configs/default.py`; absent keys are not checked.
    prefix: prepended to key names in messages (``''`` for library callers).

  Raises:
    ConfigError: naming the first bad flag, its requirement and its value;
      further problems are counted in the message and listed in
      ``error.problems``.
  """
  c = _Checker(config, prefix)
  # data
  c.path('data.train')
  c.path('data.test')
  c.choice('data.format', FORMATS)
  c.fraction('data.val_fraction')
  c.fraction('data.test_fraction')
  c.number('data.max_per_class', lo=0, integer=True)
  # features
  c.choice('features.tokenizer', TOKENIZERS)
  c.number('features.ngrams', lo=1, integer=True)
  c.number('features.buckets', lo=0, integer=True)
  c.number('features.min_count', lo=1, integer=True)
  c.number('features.max_vocab', lo=0, integer=True)
  c.number('features.min_df', lo=1, integer=True)
  c.number('features.shape_ngrams', lo=0, integer=True)
  c.choice('features.weighting', WEIGHTINGS)
  c.choice('features.normalize', NORMALIZATIONS)
  # optimizer
  c.choice('optimizer.name', OPTIMIZERS)
  c.number('optimizer.learning_rate', lo=0, lo_open=True)
  c.choice('optimizer.schedule', SCHEDULES)
  c.fraction('optimizer.momentum')
  c.fraction('optimizer.warmup_fraction')
  c.number('optimizer.decay_rate', lo=0, lo_open=True, hi=1)
  c.number('optimizer.weight_decay', lo=0)
  c.number('optimizer.clip_norm', lo=0)
  # train
  c.number('train.batch_size', lo=0, lo_open=True, integer=True)
  c.number('train.token_budget', lo=0, lo_open=True, integer=True)
  c.number('train.epochs', lo=1, integer=True)
  c.number('train.l2', lo=0)
  c.number('train.seed', lo=0, integer=True)
  c.number('train.patience', lo=0, integer=True)
  c.choice('train.metric', METRICS)
  c.choice('train.update', UPDATES)
  c.number('train.checkpoint_every', lo=0, integer=True)
  c.number('train.steps_per_call', lo=0, lo_open=True, integer=True)
  present, cache = c.get('train.compile_cache')
  if present and not isinstance(cache, str):
    c.fail('train.compile_cache', 'must be a folder path or empty', cache)
  elif present and cache and os.path.isfile(os.path.expanduser(cache)):
    c.fail('train.compile_cache', 'must be a folder, not a file', cache)
  # cross-field
  ok_v, val = c.get('data.val_fraction')
  ok_t, test = c.get('data.test_fraction')
  _, test_path = c.get('data.test')
  if (ok_v and ok_t and not test_path and _is_number(val) and _is_number(test)
      and 0 <= val < 1 and 0 <= test < 1 and val + test >= 1):
    c.problems.append(
        f'{prefix}data.val_fraction + {prefix}data.test_fraction must be < 1, '
        f'got {val} + {test}')
  ok_m, momentum = c.get('optimizer.momentum')
  _, name = c.get('optimizer.name')
  if ok_m and _is_number(momentum) and momentum > 0 and name in OPTIMIZERS and (
      name != 'sgd'):
    c.fail('optimizer.momentum', f'must be 0 with optimizer.name={name!r} '
           '(momentum applies to sgd only)', momentum)
  if not c.problems and 'optimizer' in config and 'train' in config:
    # The engine's own cross-field checks (e.g. lr * decay < 1).
    from linjax.engine import training as train  # pylint: disable=g-import-not-at-top
    try:
      train.validate_config(config)
    except optim.ConfigError as e:
      c.problems.append(prefix + str(e).rstrip('.'))
  if c.problems:
    first = c.problems[0]
    more = len(c.problems) - 1
    error = ConfigError(first + (f' (and {more} more problem'
                                 f'{"s" if more > 1 else ""}: '
                                 + '; '.join(c.problems[1:]) + ')'
                                 if more else ''))
    error.problems = list(c.problems)
    raise error


# Errors a user can cause, for the command-line runners.

_USER_ERRORS = (('linjax.data.corpus', 'DataError'),
                ('linjax.saved_model', 'ModelFileError'),
                ('linjax.engine.training', 'TrainingDiverged'),
                ('linjax.engine.checkpoint', 'CheckpointError'),
                ('linjax.engine.optimizers', 'ConfigError'))


def user_error_types() -> tuple:
  """Exception types that mean bad input, not a bug in linjax.

  `ConfigError` (and the engine's), `linjax.data.DataError`,
  `linjax.saved_model.ModelFileError`, `linjax.train.TrainingDiverged`,
  `linjax.checkpoint.CheckpointError` and OSError (unreadable or unwritable
  paths).
  """
  types = [ConfigError, OSError]
  for module, name in _USER_ERRORS:
    try:
      types.append(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError):
      pass
  return tuple(types)


def one_line(error: BaseException) -> str:
  """The error's message on a single line."""
  return ' '.join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def exit_on_user_error():
  """Turns a user error into ``error: <one line>`` on stderr and exit 1.

  Anything else (a bug) still raises with its traceback.
  """
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(e, user_error_types()):
      sys.exit(f'error: {one_line(e)}')
    raise


@contextlib.contextmanager
def runner_main(argv, **required):
  """The common start of a runner's ``main(argv)``.

  Rejects stray positional arguments (absl's usage error), then runs the
  body under `exit_on_user_error`, after checking that every flag named in
  ``required`` (flag name -> its value) is set.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with exit_on_user_error():
    missing = [f'--{name}' for name, value in required.items() if not value]
    if missing:
      raise ConfigError(f'{" and ".join(missing)} '
                        f'{"is" if len(missing) == 1 else "are"} required')
    yield
