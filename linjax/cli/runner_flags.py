"""Flags shared by the runners: ``--config`` with overrides, parsing that
ends bad flags in one line, and ``--help`` that lists every config key.

`define_config_flag` and `parse_flags` are also reachable as
``linjax.cli.train.define_config_flag``/``parse_flags`` (the other runners
use them from there).
"""

from __future__ import annotations

import os
import re
import sys

from absl import flags
from ml_collections import config_flags

from linjax.cli import config_check
from linjax.cli import console

DEFAULT_CONFIG = console.DEFAULT_CONFIG
# The running subcommand's module name, set by `linjax.cli.main.run_command`.
COMMAND_MODULE: list = []
HELP_FLAGS = ('--help', '-help', '-h', '-?', '--helpshort', '--helpfull')

FLAGS = flags.FLAGS


def _override_error(error: BaseException, argv) -> str:
  """One line for an unknown ``--config.x.y`` key (ml_collections raises
  AttributeError/KeyError with a "Did you mean" hint)."""
  text = str(error)
  key = re.search(r"'([A-Za-z0-9_]+)\\?'", text)
  hint = re.search(r'Did you mean \\?"([A-Za-z0-9_]+)', text)
  culprits = [a.split('=')[0] for a in argv if a.startswith('--config.')
              and key and key.group(1) in a.split('=')[0].split('.')]
  where = culprits[0] if culprits else 'a --config.* override'
  program = (argv[0] if argv and str(argv[0]).startswith('linjax ')
             else 'linjax train')
  suggestion = hint.group(1) if hint else (
      _closest_key(culprits[0]) if culprits else None)
  return (f'{where}: no such config key' +
          (f' (did you mean {suggestion!r}?)' if suggestion else '') +
          f' ({program} --help lists every key)')


def _closest_key(flag: str) -> str | None:
  """The default config's key closest to ``--config.SECTION.KEY``'s KEY
  (ml_collections suggests one only for some misspellings)."""
  import difflib  # pylint: disable=g-import-not-at-top
  import importlib.util  # pylint: disable=g-import-not-at-top
  parts = flag[len('--config.'):].split('.')
  spec = importlib.util.spec_from_file_location('_default', DEFAULT_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  node = module.get_config()
  for part in parts[:-1]:
    if part not in node or not hasattr(node[part], 'keys'):
      return None
    node = node[part]
  close = difflib.get_close_matches(parts[-1], list(node.keys()), n=1,
                                    cutoff=0.6)
  return close[0] if close else None


CONFIG_DIR = os.path.dirname(DEFAULT_CONFIG)


def builtin_configs() -> list:
  """Names of the built-in configs (linjax/cli/configs/NAME.py)."""
  return sorted(name[:-3] for name in os.listdir(CONFIG_DIR)
                if name.endswith('.py') and not name.startswith('_'))


def resolve_config_name(argv: list) -> list:
  """``argv`` with ``--config=NAME`` (a built-in config, e.g. ``multilabel``)
  replaced by that config's path; a file of that name wins.

  Raises:
    SystemExit: one line for a ``--config`` file that does not exist.
  """
  out, i = list(argv), 0
  while i < len(out):
    arg = out[i]
    if arg in ('--config', '-config') and i + 1 < len(out):
      i += 1
      value, prefix = out[i], ''
    elif arg.startswith(('--config=', '-config=')):
      prefix, value = arg.split('=', 1)
      prefix += '='
    else:
      i += 1
      continue
    path = value.split(':', 1)[0]   # ml_collections' FILE:ARGS
    if not os.path.exists(path):
      if path in builtin_configs():
        out[i] = prefix + os.path.join(CONFIG_DIR, path + '.py') + (
            value[len(path):])
      else:
        sys.exit(f'error: --config={value}: no such file; give a python '
                 f'file with get_config(), or a built-in config: '
                 f'{", ".join(builtin_configs())}')
    i += 1
  return out


def define_config_flag(help_text: str) -> None:
  """``--config`` (default: configs/default.py) with ``--config.x.y`` overrides.

  ``--config=NAME`` names a built-in config (`builtin_configs`). ml_collections
  reads the overrides from sys.argv while defining the flag when the default
  config is used; an unknown key then exits with one line.
  """
  renamed = config_check.renamed_flag(sys.argv)
  if renamed:   # ml_collections would fail on it with a confusing message
    sys.exit(f'error: {renamed}')
  sys.argv[:] = resolve_config_name(sys.argv)
  help_text += (f' A path, or a built-in config: '
                f'{", ".join(builtin_configs())} (default: default).')
  try:
    config_flags.DEFINE_config_file('config', DEFAULT_CONFIG, help_text,
                                    lock_config=True)
  except (AttributeError, KeyError) as e:
    sys.exit(f'error: {_override_error(e, sys.argv)}')


def print_help() -> None:
  """The runner's usage, its flags and (with --config) every config key.

  absl's own usage describes the ``__main__`` module; under the ``linjax``
  command that is the dispatcher, so the running subcommand's module
  (`linjax.cli.main.run_command` records it) is described instead.
  """
  module = sys.modules.get(COMMAND_MODULE[0]) if COMMAND_MODULE else None
  if module is None:
    from absl import app  # pylint: disable=g-import-not-at-top
    app.usage(shorthelp=True, writeto_stdout=True)
  else:
    print(module.__doc__ or f'USAGE: {sys.argv[0]} [flags]')
    print('flags:')
    print(FLAGS.module_help(module.__name__))
  if 'config' in FLAGS:
    print()
    print(console.config_help())


def unknown_flag_line(name: str, program: str) -> str:
  """One line for ``--name``, which the running command does not define:
  the closest of its own flags (absl suggests from every flag loaded, e.g.
  the training runner's ``--coordinator_address`` for ``--foo``)."""
  import difflib  # pylint: disable=g-import-not-at-top
  module = COMMAND_MODULE[0] if COMMAND_MODULE else None
  own = sorted(f.name for f in (FLAGS.get_flags_for_module(module)
                                if module in sys.modules else []))
  close = difflib.get_close_matches(name, own, n=1, cutoff=0.6)
  return (f'--{name}: no such flag of {program}' +
          (f'; did you mean --{close[0]}?' if close else '') +
          f' ({program} --help lists them)')


def parse_flags(argv):
  """Flag parser for `app.run`: bad flags end in one line, not a traceback;
  ``--help`` prints the usage (and config keys) and exits 0."""
  if any(a in HELP_FLAGS for a in argv[1:]):
    try:
      print_help()
      sys.stdout.flush()
    except BrokenPipeError:   # `linjax train --help | head`: not an error
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
  renamed = config_check.renamed_flag(argv)
  if renamed:
    sys.exit(f'error: {renamed}')
  try:
    return FLAGS(argv)
  except flags.UnrecognizedFlagError as e:
    sys.exit(f'error: {unknown_flag_line(e.flagname, argv[0])}')
  except flags.Error as e:
    sys.exit(f'error: {config_check.one_line(e)}')
  except (AttributeError, KeyError) as e:
    sys.exit(f'error: {_override_error(e, argv)}')
