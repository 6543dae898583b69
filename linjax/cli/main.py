"""``linjax``: one installed command with subcommands, usable from any folder.

  linjax train --workdir=run1                     # the demo corpus
  linjax train --config.data.train=train.tsv --config.data.test=test.tsv --workdir=run1
  linjax predict --model=run1/model --input=texts.txt
  linjax SUBCOMMAND --help                        # its flags and config keys

Each subcommand is an absl program in ``linjax/cli/`` with the same flags
and ``--config.x.y=value`` overrides as ``python -m experiments.X`` from the
repository. ``python -m linjax`` is the same command.

Ctrl-C (SIGINT) or SIGTERM stops any subcommand with one line and exit
status 130 or 143; what was finished stays (each subcommand writes its
files atomically, and ``train`` and ``autotune`` resume when rerun). A
subcommand module may define ``interrupted_note()``, the rest of that line.
"""

from __future__ import annotations

import importlib
import sys

# Subcommand -> (module in linjax.cli, one line for the usage).
COMMANDS = {
    'train': ('train', 'train and evaluate a model; writes results, the '
              'model and the report into --workdir'),
    'predict': ('predict', 'label each line of a file (or stdin) with a '
                'saved model'),
    'evaluate': ('evaluate', 'metrics of a saved model on a labelled file'),
    'autotune': ('autotune', 'search learning rate, L2 and epochs on the '
                 'validation split; writes best_config.py'),
    'sweep': ('sweep', 'a grid of learning rates and L2 strengths trained '
              'as one vmapped program'),
    'landscape': ('landscape', "the lecture's loss-landscape demos"),
    'convert': ('convert', 'a saved model in float16 or int8 (smaller; '
                'never overwrites without --overwrite)'),
    'explain': ('explain', 'why a text gets its label rather than the '
                'runner-up: each n-gram\'s part of the margin'),
    'gradcheck': ('gradcheck', 'jax.grad vs the hand-derived gradient vs '
                  'finite differences on real data'),
    'plots': ('plots', "draw a finished run's PNG plots (curves, confusion "
              'matrix, templates)'),
    'report': ('report', 'report.html of a saved model on a labelled file: '
               'errors, token contributions, templates, calibration'),
    'explore': ('explore', 'a what-if page on 127.0.0.1: type a text, see '
                'the prediction and each token\'s contribution'),
}


def usage() -> str:
  width = max(map(len, COMMANDS))
  lines = ['usage: linjax SUBCOMMAND [--flags]  (linjax SUBCOMMAND --help '
           'for its flags)', '', 'subcommands:']
  lines += [f'  {name:<{width}}  {text}'
            for name, (_, text) in COMMANDS.items()]
  return '\n'.join(lines)


def run_command(name: str, argv: list[str] | None = None) -> None:
  """Runs subcommand ``name`` with ``argv`` (default: ``sys.argv[1:]``) as
  its flags; exits with the subcommand's status."""
  argv = sys.argv[1:] if argv is None else argv
  if name not in COMMANDS:
    sys.stderr.write(f'error: linjax has no subcommand {name!r}; one of: '
                     f'{", ".join(COMMANDS)} (linjax --help)\n')
    sys.exit(2)   # a usage error, as `linjax` alone
  # absl and ml_collections read the flags (and --config.x.y overrides)
  # from sys.argv: the subcommand sees only its own.
  sys.argv = [f'linjax {name}', *argv]
  module_name = f'linjax.cli.{COMMANDS[name][0]}'
  from linjax.cli import console  # pylint: disable=g-import-not-at-top
  from linjax.cli import runner_flags  # pylint: disable=g-import-not-at-top
  runner_flags.COMMAND_MODULE[:] = [module_name]   # for --help
  module = None
  try:
    with console.raise_on_signals():
      module = importlib.import_module(module_name)
      module.command()
  except (console.Interrupted, KeyboardInterrupt) as e:
    code = getattr(e, 'exit_code', 130)
    note = getattr(module, 'interrupted_note', None)
    note = note() if note else 'nothing finished was changed'
    sys.stderr.write(f'linjax {name}: interrupted; {note}\n')
    console.exit_process(code)
  except BrokenPipeError:
    closed_output()


def closed_output() -> None:
  """Ends the process quietly when its reader went away (``linjax predict
  ... | head``), as command-line tools killed by SIGPIPE do (exit 141):
  no traceback, and no second error when Python flushes stdout at exit.
  What a command finished stays (a run's files are written before its
  summary is printed)."""
  import os  # pylint: disable=g-import-not-at-top
  os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  sys.exit(141)


def run() -> None:
  """The ``linjax`` console script."""
  args = sys.argv[1:]
  if not args or args[0] in ('-h', '--help', 'help'):
    try:
      print(usage())
      sys.stdout.flush()
    except BrokenPipeError:
      closed_output()
    sys.exit(0 if args else 2)
  if args[0] == '--version':
    from linjax import __version__  # pylint: disable=g-import-not-at-top
    print(f'linjax {__version__}')
    return
  run_command(args[0], args[1:])


if __name__ == '__main__':
  run()
