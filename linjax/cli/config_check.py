"""The runner config: its validation and the one adapter to library options.

`to_options(config)` turns the ConfigDict of linjax/cli/configs/default.py
into the library's typed options (`RunOptions`: `FeaturizerOptions`,
`OptimizerOptions`, `TrainOptions`); the library never sees the config.
`validate(config)` checks the runner's own keys (``data.*``,
``train.gradcheck``, ``train.compile_cache``, ``train.keep_checkpoints``,
``train.remove_checkpoints``) and builds the options, which validate
themselves, and raises one `ConfigError` naming every bad flag, e.g.

  --config.optimizer.learning_rate must be > 0, got -1

so that a bad value fails in milliseconds instead of after featurisation.
The first problem is shown in full, the others after it; all are listed in
``error.problems``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib
import os
import sys
import types
from typing import NamedTuple

from linjax.core import losses
from linjax.core.errors import Checker
from linjax.core.errors import ConfigError
from linjax.core.errors import is_number
from linjax.data import readers
from linjax.engine.options import check_decay
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.featurizer_options import FeaturizerOptions

FORMATS = ('',) + tuple(readers.FORMATS)
# config section -> the options it becomes; runner-only keys of a section.
SECTIONS = {'features': FeaturizerOptions, 'optimizer': OptimizerOptions,
            'train': TrainOptions}
RUNNER_KEYS = {'train': ('gradcheck', 'compile_cache', 'keep_checkpoints',
                         'remove_checkpoints')}
# Keys that were renamed: old 'section.key' -> new. An old config file that
# sets one gets a one-line error naming the new key (never silently used):
# ``train.update`` clashed with ``ConfigDict.update``, so no flag could set it.
RENAMED_KEYS = {'train.update': 'train.update_path'}


class RunOptions(NamedTuple):
  """The library options of one runner config."""

  features: FeaturizerOptions
  optimizer: OptimizerOptions
  training: TrainOptions


def _section(config, name: str) -> dict:
  node = config[name] if name in config else {}
  node = node.to_dict() if hasattr(node, 'to_dict') else dict(node)
  return {k: v for k, v in node.items() if k not in RUNNER_KEYS.get(name, ())}


def _options(config) -> tuple[dict, list]:
  """(built options by section, problems) for the sections present."""
  built, problems = {}, []
  for name, cls in SECTIONS.items():
    values = _section(config, name)
    for old, new in RENAMED_KEYS.items():
      if old.startswith(name + '.') and old.split('.', 1)[1] in values:
        problems.append(f'{old} was renamed: use --config.{new} (same '
                        f'values), got {values.pop(old.split(".", 1)[1])!r}')
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      problems.append(f'{name}.{unknown[0]} is not an option; known: '
                      f'{", ".join(sorted(known | set(RUNNER_KEYS.get(name, ()))))}')
      continue
    try:
      built[name] = cls(**values)
    except ConfigError as e:
      problems.extend(e.problems)
  if not problems and 'optimizer' in built and 'train' in built:
    try:
      check_decay(built['optimizer'], built['train'].l2)
    except ConfigError as e:
      problems.extend(e.problems)
  return built, problems


def to_options(config, prefix: str = '--config.') -> RunOptions:
  """The `RunOptions` of ``config`` (sections absent: the defaults).

  Raises:
    ConfigError: naming every bad key with ``prefix``.
  """
  built, problems = _options(config)
  if problems:
    raise ConfigError([prefix + p.rstrip('.') for p in problems])
  return RunOptions(built.get('features', FeaturizerOptions()),
                    built.get('optimizer', OptimizerOptions()),
                    built.get('train', TrainOptions()))


def _present(config, section: str, keys) -> types.SimpleNamespace:
  """The keys of ``config[section]`` among ``keys`` that are set."""
  node = config[section] if section in config else {}
  return types.SimpleNamespace(**{k: node[k] for k in keys if k in node})


def renamed_flag(argv) -> str | None:
  """The one-line error for a ``--config.<old key>`` among ``argv`` (see
  `RENAMED_KEYS`), or None."""
  for arg in argv:
    key = arg.split('=', 1)[0]
    if key.startswith('--config.') and key[len('--config.'):] in RENAMED_KEYS:
      return (f'{key} was renamed: use '
              f'--config.{RENAMED_KEYS[key[len("--config."):]]} (same values)')
  return None


def _is_glob(path: str) -> bool:
  return any(c in path for c in '*?[')


def _runner_problems(config) -> list:
  """Problems with the runner-only keys (the options check the rest)."""
  data = _present(config, 'data', ('train', 'test', 'format', 'val_fraction',
                                    'test_fraction', 'max_per_class',
                                    'label_separator', 'allow_unlabeled'))
  train = _present(config, 'train', RUNNER_KEYS['train'])
  d, t = Checker(data, 'data'), Checker(train, 'train')
  for key in ('train', 'test'):
    path = getattr(data, key, '')
    if path in ('', None):
      continue
    if not isinstance(path, str):
      d.fail(key, 'must be a path', path)
    elif not (glob.glob(os.path.expanduser(path)) if _is_glob(path)
              else os.path.exists(path)):
      d.fail(key, 'must name an existing file or folder, or a glob of files '
             '(not found)', path)
  for key, check, args in (('format', d.choice, (FORMATS,)),
                           ('val_fraction', d.fraction, ()),
                           ('test_fraction', d.fraction, ()),
                           ('max_per_class', d.integer, (0,))):
    if hasattr(data, key):
      check(key, *args)
  val, test = (getattr(data, 'val_fraction', None),
               getattr(data, 'test_fraction', None))
  if (not getattr(data, 'test', None) and is_number(val) and is_number(test)
      and 0 <= val < 1 and 0 <= test < 1 and val + test >= 1):
    d.problems.append(f'data.val_fraction + data.test_fraction must be < 1 '
                      f'(the rest is for training), got {val} + {test}')
  if hasattr(data, 'allow_unlabeled'):
    d.boolean('allow_unlabeled')
  separator = getattr(data, 'label_separator', ',')
  if not isinstance(separator, str) or not separator:
    d.fail('label_separator', 'must be a non-empty string', separator)
  loss = config['train'].get('loss', 'softmax') if 'train' in config else (
      'softmax')
  try:
    multi_label = losses.get_loss(loss).multi_label
  except losses.LossNotFound:
    multi_label = True   # TrainOptions names train.loss; not this flag too
  if getattr(data, 'allow_unlabeled', False) is True and not multi_label:
    d.fail('allow_unlabeled', 'needs a multi-label loss, e.g. '
           '--config.train.loss=sigmoid (a document with no tags is '
           'multi-label)', True)
  for key in ('gradcheck', 'remove_checkpoints'):
    if hasattr(train, key):
      t.boolean(key)
  if hasattr(train, 'keep_checkpoints'):
    t.integer('keep_checkpoints', lo=1)
  cache = getattr(train, 'compile_cache', '')
  if not isinstance(cache, str):
    t.fail('compile_cache', "must be 'auto', a folder path or empty", cache)
  elif cache and cache != 'auto' and os.path.isfile(os.path.expanduser(cache)):
    t.fail('compile_cache', 'must be a folder, not a file', cache)
  return d.problems + t.problems


def validate(config, prefix: str = '--config.') -> RunOptions:
  """Checks every key of ``config``; returns its `RunOptions`.

  Args:
    config: an `ml_collections.ConfigDict` (or nested dict) with the sections
      of linjax/cli/configs/default.py; absent keys are not checked.
    prefix: prepended to key names in messages (``''`` for library callers).

  Raises:
    ConfigError: naming the first bad flag, its requirement and its value;
      further problems are counted in the message and listed in
      ``error.problems``.
  """
  problems = _runner_problems(config)
  built, option_problems = _options(config)
  problems += option_problems
  if problems:
    raise ConfigError([prefix + p.rstrip('.') for p in problems])
  return RunOptions(built['features'], built['optimizer'], built['train'])


# Errors a user can cause, for the command-line runners.

_USER_ERRORS = (('linjax.data.readers', 'DataError'),
                ('linjax.saved_model', 'ModelFileError'),
                ('linjax.engine.training', 'TrainingDiverged'),
                ('linjax.engine.checkpoint', 'CheckpointError'),
                ('linjax.cli.multiprocess_run', 'ProcessFailed'))


def user_error_types() -> tuple:
  """Exception types that mean bad input, not a bug in linjax.

  `ConfigError`, `linjax.data.readers.DataError`,
  `linjax.saved_model.ModelFileError`,
  `linjax.engine.training.TrainingDiverged`,
  `linjax.engine.checkpoint.CheckpointError`,
  `linjax.cli.multiprocess_run.ProcessFailed` (another process of a
  multi-process run failed) and OSError (unreadable or unwritable paths).
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


def data_keys_as_flags(message: str, keys=('format', 'text_column',
                                          'label_column', 'lenient')) -> str:
  """``message`` (a reader's error, whose fix names ``data.KEY`` config
  keys) for a command whose flags are ``--KEY``: ``--config.data.KEY=V``
  becomes ``--KEY=V`` (``--lenient`` for ``=True``), ``data.KEY`` ``--KEY``.
  """
  import re  # pylint: disable=g-import-not-at-top
  names = '|'.join(map(re.escape, keys))
  message = re.sub(rf'--config\.data\.({names})=True\b', r'--\1', message)
  message = re.sub(rf'--config\.data\.({names})\b', r'--\1', message)
  return re.sub(rf'(?<![\w.-])data\.({names})\b', r'--\1', message)


@contextlib.contextmanager
def exit_on_user_error():
  """Turns a user error into ``error: <one line>`` on stderr and exit 1.

  Anything else (a bug) still raises with its traceback. A closed output
  pipe (``linjax predict ... | head``) is no error of the user's: it goes
  up to `linjax.cli.main.run_command`, which ends quietly.
  """
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(e, user_error_types()) and not isinstance(
        e, BrokenPipeError):
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
