r"""Autotune: learning rate, L2 and epochs in vmapped batches, within a budget.

  python -m experiments.autotune --workdir=/tmp/tune --time_budget=60 \
      [--config=linjax/cli/configs/default.py \
       --config.data.train=train.tsv --config.data.test=test.tsv]
  python -m experiments.train --config=/tmp/tune/best_config.py --workdir=...

Successive halving over batches of configurations that each train as one
vmapped program (`linjax.engine.autotune`), chosen on the config's validation
split (``data.val_fraction``, the same split `experiments.train` carves). The
budget counts featurisation and the search (not reading the files). Writes to
--workdir:

  best_config.py   the base config with the chosen optimizer.learning_rate,
                   train.l2 and train.epochs: `experiments.train` retrains
                   exactly the chosen model from it (same split and seed)
  autotune.json    every trial, the choice, the plan (replay it with
                   --num_configs/--brackets), test metrics of the chosen
                   model when there is a test split, peak memory
  autotune.txt     the trials as a table
  autotune.png     validation accuracy of every trial against its learning
                   rate, by rung, and the best so far against time

With ``--config.train.loss=sigmoid`` (multi-label data, see
linjax/cli/multilabel_run.py) the validation "accuracy" that chooses is
P@1; the chosen model's threshold is tuned on the validation split and the
test metrics are P@1 (``test_accuracy``), micro- and macro-F1 at it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import pprint
import resource
import time

from absl import app
from absl import flags
from absl import logging
from linjax.cli import config_check
from linjax.cli import multilabel_run
from linjax.cli import run_data
from linjax.cli import train as train_runner

FLAGS = flags.FLAGS

train_runner.define_config_flag('Base configuration; autotune replaces '
                       'optimizer.learning_rate, train.l2 and train.epochs.')
flags.DEFINE_string('workdir', None, 'Output directory.')
flags.DEFINE_float('time_budget', 60.0, 'Seconds for featurisation and search.')
flags.DEFINE_integer('seed', 0, 'Seed of the drawn configurations and '
                     'subsamples (the training order keeps train.seed).')
flags.DEFINE_list('learning_rates', [], 'low,high of the log-uniform learning '
                  'rate; empty: config lr / 16 to 4 x config lr.')
flags.DEFINE_list('l2s', ['1e-8', '1e-4'], 'low,high of the log-uniform '
                  'non-zero L2 strengths.')
flags.DEFINE_float('l2_zero', 0.25, 'Share of configurations with L2 = 0.')
flags.DEFINE_list('epochs', ['1', '2', '3', '4', '6', '8', '12', '16'],
                  'Epoch counts to choose from.')
flags.DEFINE_integer('max_models', 16, 'Configurations per vmapped batch at '
                     'most.')
flags.DEFINE_float('memory_mb', 1024.0, 'Memory of one batch\'s training '
                   'states at most (MB).')
flags.DEFINE_integer('num_configs', 0, '> 0: this many first-rung '
                     'configurations per bracket, whatever the time (a fixed, '
                     'reproducible plan).')
flags.DEFINE_integer('brackets', 0, '> 0: stop after this many brackets.')


def _numbers(name: str, values, kind=float) -> tuple:
  try:
    return tuple(kind(v) for v in values)
  except ValueError:
    raise config_check.ConfigError(
        f'--{name} must be a comma-separated list of '
        f'{"integers" if kind is int else "numbers"}, got '
        f'{",".join(values)!r}') from None


def autotune_options(seed=None):
  """`AutotuneOptions` from the flags; ConfigError naming the flag."""
  from linjax.engine.autotune_options import AutotuneOptions  # pylint: disable=g-import-not-at-top
  try:
    return AutotuneOptions(
        time_budget=FLAGS.time_budget,
        seed=FLAGS.seed if seed is None else seed,
        learning_rate=_numbers('learning_rates', FLAGS.learning_rates),
        l2=_numbers('l2s', FLAGS.l2s), l2_zero=FLAGS.l2_zero,
        epochs=_numbers('epochs', FLAGS.epochs, int),
        max_models=FLAGS.max_models, memory_mb=FLAGS.memory_mb,
        num_configs=FLAGS.num_configs, brackets=FLAGS.brackets)
  except config_check.ConfigError as e:
    raise config_check.ConfigError(
        [p.replace('autotune.learning_rate', '--learning_rates')
         .replace('autotune.l2 ', '--l2s ').replace('autotune.', '--')
         for p in e.problems]) from None


def chosen_config(config, best: dict, token_budget: int | None = None):
  """A copy of ``config`` with the chosen learning rate, L2 and epochs.

  With ``token_budget`` (the step's T that the data's rules gave the
  search), the rules are written out as their result: that T, and
  ``docs_per_step``/``max_steps`` off, so `experiments.train` runs exactly
  the searched epochs.
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  values = config.to_dict()
  values['optimizer']['learning_rate'] = float(best['lr'])
  values['train']['l2'] = float(best['l2'])
  values['train']['epochs'] = int(best['epochs'])
  if token_budget is not None:
    values['train'].update(token_budget=int(token_budget), docs_per_step=0,
                           max_steps=0)
  return ml_collections.ConfigDict(values)


def write_config(path: str, config, header: str) -> None:
  """A python file whose ``get_config()`` returns ``config``."""
  body = pprint.pformat(config.to_dict(), indent=1, width=79, sort_dicts=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(f'"""{header}"""\n\nimport ml_collections\n\n\n'
            f'def get_config() -> ml_collections.ConfigDict:\n'
            f'  return ml_collections.ConfigDict(\n')
    f.write('\n'.join('      ' + line for line in body.splitlines()))
    f.write(')\n')


def format_table(trials: list, best: dict) -> str:
  lines = [f'{"bracket":>7s} {"rung":>4s} {"docs":>7s} {"lr":>9s} {"l2":>9s} '
           f'{"epochs":>6s} {"val_acc":>8s} {"val_loss":>8s} {"at s":>6s}']
  for t in trials:
    lines.append(f'{t["bracket"]:7d} {t["rung"]:4d} {t["docs"]:7d} '
                 f'{t["lr"]:9.4g} {t["l2"]:9.3g} {t["epochs"]:6d} '
                 f'{t["val_accuracy"]:8.4f} {t["val_loss"]:8.4f} '
                 f'{t["elapsed"]:6.1f}' + ('  <- chosen' if t is best else ''))
  return '\n'.join(lines)


def plot(trials: list, path: str) -> None:
  """Validation accuracy vs learning rate by rung; best so far vs time."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  for rung in sorted({t['rung'] for t in trials}):
    ts = [t for t in trials if t['rung'] == rung and
          math.isfinite(t['val_accuracy'])]
    left.scatter([t['lr'] for t in ts], [t['val_accuracy'] for t in ts],
                 s=[6 + 3 * t['epochs'] for t in ts], alpha=0.6,
                 label=f'rung {rung} ({ts[0]["docs"] if ts else 0} docs)')
  left.set_xscale('log')
  left.set_xlabel('learning rate (marker size: epochs)')
  left.set_ylabel('validation accuracy')
  left.legend(fontsize=8)
  top = max(t['rung'] for t in trials)
  best, xs, ys = -math.inf, [], []
  for t in trials:
    if t['rung'] == top and math.isfinite(t['val_accuracy']):
      best = max(best, t['val_accuracy'])
      xs.append(t['elapsed'])
      ys.append(best)
  right.step(xs, ys, where='post')
  right.set_xlabel('seconds')
  right.set_ylabel('best validation accuracy (all data)')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run(config, workdir: str, options) -> dict:
  """The search and its outputs (see the module docstring)."""
  from linjax.engine import autotune  # pylint: disable=g-import-not-at-top
  run_options, splits, featurizer, train_x, val_x, featurize_seconds = (
      run_data.featurise_for_validation(config, workdir, 'autotune'))
  start = time.perf_counter() - featurize_seconds   # featurising + search
  # The data's rules fix the step's T once (as fit would); the epochs are
  # searched, so max_steps is off.
  from linjax.engine import training as training_lib  # pylint: disable=g-import-not-at-top
  searched = dataclasses.replace(
      training_lib.run_options(train_x, run_options.training),
      docs_per_step=0, max_steps=0)
  names = splits.label_map.names
  if options.num_configs == 0:
    options = dataclasses.replace(options, time_budget=max(
        options.time_budget - featurize_seconds, 1e-3))
  logging.info('autotune: %d training and %d validation documents, %.0f s '
               'left after featurising', len(splits.train_texts),
               len(splits.val_texts), options.time_budget)
  result = autotune.autotune(train_x, splits.train_y, len(names),
                             val_x=val_x, val_y=splits.val_y,
                             optimizer=run_options.optimizer,
                             training=searched, options=options,
                             log=logging.info)
  best = result.best
  out = dict(best=best, trials=result.trials, plan=result.plan,
             search_seconds=result.seconds,
             compile_seconds=result.compile_seconds,
             featurize_seconds=featurize_seconds,
             total_seconds=time.perf_counter() - start,
             options=dataclasses.asdict(options),
             num_train=len(splits.train_texts), num_val=len(splits.val_texts))
  if multilabel_run.is_multilabel(searched):
    out['threshold'] = multilabel_run.choose_threshold(
        result.params, val_x, splits.val_y)
  out.update(run_data.test_scores(result.params, featurizer, splits,
                                  out.get('threshold')))
  out['peak_rss_mb'] = resource.getrusage(
      resource.RUSAGE_SELF).ru_maxrss / 1024
  write_config(
      os.path.join(workdir, 'best_config.py'),
      chosen_config(config, best, searched.token_budget),
      f'Chosen by experiments.autotune on '
      f'{datetime.date.today().isoformat()}: validation accuracy '
      f'{best["val_accuracy"]:.4f} with optimizer.learning_rate='
      f'{best["lr"]:.6g}, train.l2={best["l2"]:.3g}, train.epochs='
      f'{best["epochs"]}.')
  with open(os.path.join(workdir, 'autotune.json'), 'w',
            encoding='utf-8') as f:
    json.dump(_finite_or_none(out), f, indent=1)
  table = format_table(result.trials, best)
  with open(os.path.join(workdir, 'autotune.txt'), 'w',
            encoding='utf-8') as f:
    f.write(table + '\n')
  plot(result.trials, os.path.join(workdir, 'autotune.png'))
  full = sum(t['rung'] == result.plan['rungs'] - 1 for t in result.trials)
  print(f'{len(result.trials)} trials ({full} on all {len(splits.train_texts)}'
        f' training documents) in {result.seconds:.1f} s (+ '
        f'{featurize_seconds:.1f} s featurising); chosen: learning_rate='
        f'{best["lr"]:.4g} l2={best["l2"]:.3g} epochs={best["epochs"]}, '
        f'validation accuracy {best["val_accuracy"]:.4f}')
  if 'test_micro_f1' in out:
    print(f'test P@1 of the chosen model {out["test_accuracy"]:.4f}, '
          f'micro-F1 {out["test_micro_f1"]:.4f} and macro-F1 '
          f'{out["test_macro_f1"]:.4f} at threshold {out["threshold"]:.2f}')
  elif 'test_accuracy' in out:
    print(f'test accuracy of the chosen model {out["test_accuracy"]:.4f}, '
          f'macro-F1 {out["test_macro_f1"]:.4f}')
  print(f'wrote {os.path.join(workdir, "best_config.py")} (train it with '
        f'python -m experiments.train --config='
        f'{os.path.join(workdir, "best_config.py")} --workdir=...)')
  return out


def _finite_or_none(value):
  """NaN/inf -> None, so that the JSON is standard."""
  if isinstance(value, dict):
    return {k: _finite_or_none(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite_or_none(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def main(argv):
  with config_check.runner_main(argv, workdir=FLAGS.workdir):
    options = autotune_options()
    run(FLAGS.config, FLAGS.workdir, options)


def command() -> None:
  """``linjax autotune``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
