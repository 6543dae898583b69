r"""Hyperparameter sweep: every (learning rate, L2) pair trained at once.

  linjax sweep --workdir=sweep1 \
      --learning_rates=0.25,0.5,1,2,4 --l2s=0,1e-6,1e-5 \
      [--config.train.epochs=5]

Uses `linjax.engine.hyper_sweep.sweep` (the grid trained as one vmapped program),
which picks the pair with the best validation ``train.metric`` (accuracy by
default; the first of equals in lr-major order), evaluates only that model on
the test split, and writes sweep.json (the
grid, the choice, its test metrics) and sweep.txt (the table) into --workdir,
atomically; a finished sweep there (sweep.json) is refused unless
``--overwrite``, and a failed one removes what it added.
"""

from __future__ import annotations

import json
import math
import os

from absl import app
from absl import flags
from absl import logging
from linjax.cli import run_data
from linjax.cli import train as train_runner
from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS

train_runner.define_config_flag(
    'Base configuration; the sweep replaces optimizer.learning_rate and '
    'train.l2.')
flags.DEFINE_string('workdir', None, 'Output directory.')
flags.DEFINE_list('learning_rates', ['0.25', '0.5', '1', '2', '4'],
                  'Learning rates to try.')
flags.DEFINE_list('l2s', ['0', '1e-6', '1e-5'], 'L2 strengths to try.')
flags.DEFINE_bool('overwrite', False, 'Replace a finished sweep in '
                  '--workdir.')


def parse_values(name: str, values, positive: bool) -> list[float]:
  """Floats from a flag list; ConfigError naming the flag otherwise."""
  try:
    out = [float(v) for v in values]
  except ValueError:
    raise config_check.ConfigError(
        f'--{name} must be a comma-separated list of numbers, got '
        f'{",".join(values)!r}') from None
  if not out:
    raise config_check.ConfigError(f'--{name} must not be empty')
  for v in out:
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
      raise config_check.ConfigError(
          f'--{name} values must be {"> 0" if positive else ">= 0"}, got {v:g}')
  return out


def _finite_or_none(value):
  """NaN/inf -> None, so that the JSON is standard."""
  if isinstance(value, dict):
    return {k: _finite_or_none(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_finite_or_none(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def format_table(grid: list[dict], best: dict) -> str:
  lines = [f'{"learning_rate":>13s} {"l2":>9s} {"val_accuracy":>12s} '
           f'{"val_loss":>9s}']
  for row in grid:
    mark = '  <- best' if row is best else ''
    lines.append(f'{row["lr"]:13g} {row["l2"]:9g} '
                 f'{row["val_accuracy"]:12.4f} {row["val_loss"]:9.4f}{mark}')
  return '\n'.join(lines)


def run(config, workdir: str, learning_rates, l2s,
        overwrite: bool = False) -> dict:
  """The sweep and its outputs (see module docstring)."""
  from linjax.engine import hyper_sweep  # pylint: disable=g-import-not-at-top
  config_check.validate(config)   # a bad flag fails before the workdir
  workdir_lib.ensure_writable_dir(workdir, '--workdir')
  if os.path.isfile(os.path.join(workdir, 'sweep.json')) and not overwrite:
    raise workdir_lib.PathError(
        f'--workdir={workdir} holds a finished sweep (sweep.json); nothing '
        f'was changed. Pass --overwrite to replace it, or choose another '
        f'--workdir.')
  options, splits, featurizer, train_x, val_x, featurize_seconds = (
      run_data.featurise_for_validation(config, workdir, 'a sweep'))
  names = splits.label_map.names
  logging.info('sweeping %d learning rates x %d L2 strengths on %d documents',
               len(learning_rates), len(l2s), len(splits.train_texts))
  result = hyper_sweep.sweep(train_x, splits.train_y, len(names),
                             learning_rates=learning_rates, l2s=l2s,
                             val_x=val_x, val_y=splits.val_y,
                             optimizer=options.optimizer,
                             training=options.training)
  grid = [{k: float(v) for k, v in row.items()} for row in result.grid]
  best = next(row for row in grid
              if (row['lr'], row['l2']) == (result.best_lr, result.best_l2))
  out = dict(grid=_finite_or_none(grid), best=_finite_or_none(best),
             sweep_seconds=float(result.seconds),
             compile_seconds=float(result.compile_seconds),
             featurize_seconds=featurize_seconds,
             num_train=len(splits.train_texts),
             num_val=len(splits.val_texts), config=config.to_dict())
  out.update(run_data.test_scores(result.params, featurizer, splits))
  table = format_table(grid, best)
  workdir_lib.write_atomic(os.path.join(workdir, 'sweep.txt'), table + '\n')
  # Last: its presence marks the sweep finished.
  workdir_lib.write_atomic(os.path.join(workdir, 'sweep.json'),
                           json.dumps(out, indent=1))
  print(table)
  print(f'best: learning_rate={best["lr"]:g} l2={best["l2"]:g} (validation '
        f'accuracy {best["val_accuracy"]:.4f}, loss {best["val_loss"]:.4f}); '
        f'{len(grid)} models trained in '
        f'{out["sweep_seconds"]:.2f} s')
  if 'test_accuracy' in out:
    print(f'test accuracy of the chosen pair {out["test_accuracy"]:.4f}, '
          f'macro-F1 {out["test_macro_f1"]:.4f}')
  return out


def main(argv):
  console.short_log_format()
  # A failed sweep removes what it added to --workdir (train's contract).
  with workdir_lib.cleaned_up_on_failure(
      FLAGS.workdir, finished='sweep.json'):
    with config_check.runner_main(argv, workdir=FLAGS.workdir):
      lrs = parse_values('learning_rates', FLAGS.learning_rates,
                         positive=True)
      l2s = parse_values('l2s', FLAGS.l2s, positive=False)
      run(FLAGS.config, FLAGS.workdir, lrs, l2s, FLAGS.overwrite)


def command() -> None:
  """``linjax sweep``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
