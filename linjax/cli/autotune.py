r"""Autotune: learning rate, L2 and epochs in vmapped batches, within a budget.

  linjax autotune --workdir=tune1 --time_budget=60 \
      [--config.data.train=train.tsv --config.data.test=test.tsv]
  linjax train --config=tune1/best_config.py --workdir=run2

Successive halving over batches of configurations that each train as one
vmapped program (`linjax.engine.autotune`), chosen on the config's validation
split (``data.val_fraction``, the same split ``linjax train`` carves). The
budget counts featurisation and the search (not reading the files). Writes to
--workdir:

  best_config.py   the base config with the chosen optimizer.learning_rate,
                   train.l2 and train.epochs: ``linjax train`` retrains
                   exactly the chosen model from it (same split and seed)
  autotune.json    every trial, the choice, the plan (replay it with
                   --num_configs/--brackets), test metrics of the chosen
                   model when there is a test split (refit on train +
                   validation as `train` refits it, ``data.refit``), peak
                   memory
  autotune.txt     the trials as a table
  autotune.png     validation accuracy of every trial against its learning
                   rate, by rung, and the best so far against time

  autotune_trials.jsonl  every trial as soon as its batch has trained (the
                   first line identifies the search)

With ``--config.train.loss=sigmoid`` (multi-label data, see
linjax/cli/multilabel_run.py) the validation "accuracy" that chooses is
P@1; the chosen model's threshold is tuned on the validation split and the
test metrics are P@1 (``test_accuracy``), micro- and macro-F1 at it.

The contract of ``train``: a finished search (autotune.json) in --workdir
is refused unless ``--overwrite``; Ctrl-C stops with one line (exit 130)
and keeps the trials so far, and the same command resumes them (the same
config, data and search flags; ``--time_budget`` may change, and counts the
time the kept trials took); a failed search removes what it added to
--workdir. A trial whose training loss explodes is excluded by the rule
that stops ``train`` (linjax/cli/run_checks.py, ``DivergenceGuard``), so
``best_config.py`` always trains; if every trial on all the data diverges
the search stops with the fix.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
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
from linjax.cli import console
from linjax.cli import label_checks
from linjax.cli import multilabel_run
from linjax.cli import run_data
from linjax.cli import train as train_runner
from linjax.cli import workdir as workdir_lib

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
flags.DEFINE_bool('overwrite', False, 'Replace a finished search in '
                  '--workdir (or discard the kept trials of an interrupted '
                  'one).')

RESULT = 'autotune.json'
TRIALS = 'autotune_trials.jsonl'
OUTPUTS = ('best_config.py', RESULT, 'autotune.txt', 'autotune.png')
# Trials kept so far (for the interrupt line) and where.
_KEPT = dict(count=0, path=None)


def interrupted_note() -> str:
  """The rest of the line `linjax.cli.main` prints on Ctrl-C."""
  if not _KEPT['path']:
    return 'no trial had finished; rerun the same command to start again'
  # The file is what a rerun resumes from: count its trials (an interrupt
  # between a batch's write and the count kept in memory left them apart).
  try:
    count = len(read_trials(_KEPT['path'])[1])
  except (OSError, UnicodeDecodeError):
    count = _KEPT['count']
  return (f'{count} trial(s) kept in {_KEPT["path"]}; rerun the '
          f'same command to resume')


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
  ``docs_per_step``/``max_steps`` off, so ``linjax train`` runs exactly
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


def refit_as_train(options, splits, num_classes: int):
  """The model ``linjax train`` saves from the chosen config's ``options``
  when it refits (linjax/cli/refit.py, the same steps as train.py): a
  featuriser fitted on the training and validation texts in corpus order;
  with early stopping, a first fit on the training rows chooses the passes;
  then `training.fit` on every row.

  Returns:
    (params, featurizer, passes of the refit).
  """
  from linjax.cli import refit  # pylint: disable=g-import-not-at-top
  from linjax.engine import training as fit_lib  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  featurizer = Featurizer.from_options(options.features)
  pool = refit.featurise_pool(featurizer, splits)
  training = options.training
  if training.patience > 0:   # the passes come from the first fit
    first = fit_lib.fit(
        pool.train_x, splits.train_y, num_classes,
        optimizer=options.optimizer,
        training=refit.first_fit_options(training, pool.x),
        val_x=pool.val_x, val_y=splits.val_y)
    training = refit.options_for(training, first)
  params = fit_lib.fit(pool.x, pool.y, num_classes,
                       optimizer=options.optimizer,
                       training=training).params
  return params, featurizer, int(training.epochs)


def write_config(path: str, config, header: str) -> None:
  """A python file whose ``get_config()`` returns ``config`` (atomically)."""
  body = pprint.pformat(config.to_dict(), indent=1, width=79, sort_dicts=True)
  workdir_lib.write_atomic(path, (
      f'"""{header}"""\n\nimport ml_collections\n\n\n'
      f'def get_config() -> ml_collections.ConfigDict:\n'
      f'  return ml_collections.ConfigDict(\n' +
      '\n'.join('      ' + line for line in body.splitlines()) + ')\n'))


def format_table(trials: list, best: dict) -> str:
  lines = [f'{"bracket":>7s} {"rung":>4s} {"docs":>7s} {"lr":>9s} {"l2":>9s} '
           f'{"epochs":>6s} {"val_acc":>8s} {"val_loss":>8s} {"at s":>6s}']
  for t in trials:
    note = ('  <- chosen' if t is best else
            '  diverged' if t.get('diverged') else '')
    lines.append(f'{t["bracket"]:7d} {t["rung"]:4d} {t["docs"]:7d} '
                 f'{t["lr"]:9.4g} {t["l2"]:9.3g} {t["epochs"]:6d} '
                 f'{_number(t["val_accuracy"]):8.4f} '
                 f'{_number(t["val_loss"]):8.4f} '
                 f'{t["elapsed"]:6.1f}' + note)
  return '\n'.join(lines)


def _number(value) -> float:
  return math.nan if value is None else float(value)


# -- the workdir: refuse, resume, keep each trial ------------------------------


def search_identity(config, options) -> dict:
  """What a resumed search must share with the interrupted one: the config,
  the search flags (not the time budget) and the data files' sizes and
  modification times."""
  files = {}
  for key in ('train', 'test'):
    path = config.data[key]
    if path and os.path.exists(path):
      files[key] = [os.path.abspath(path), os.path.getsize(path),
                    int(os.path.getmtime(path))]
  searched = {k: v for k, v in dataclasses.asdict(options).items()
              if k != 'time_budget'}
  identity = dict(config=config.to_dict(), options=searched, files=files)
  text = json.dumps(identity, sort_keys=True, default=str)
  return dict(search=hashlib.sha256(text.encode()).hexdigest()[:16],
              files=files)


def prepare_workdir(workdir: str, overwrite: bool, identity: dict) -> list:
  """Checks ``workdir`` before any work; returns the kept trials of an
  interrupted search to resume (or []).

  Raises:
    PathError: a finished search without ``overwrite``; kept trials of
      another search without ``overwrite``; not a writable folder.
  """
  workdir_lib.ensure_writable_dir(workdir, '--workdir')
  finished = os.path.isfile(os.path.join(workdir, RESULT))
  trials_path = os.path.join(workdir, TRIALS)
  if finished and not overwrite:
    raise workdir_lib.PathError(
        f'--workdir={workdir} holds a finished search ({RESULT}, '
        f'best_config.py); nothing was changed. Pass --overwrite to replace '
        f'it, or choose another --workdir.')
  if overwrite:
    if os.path.exists(trials_path):
      os.remove(trials_path)
    return []
  if not os.path.isfile(trials_path):
    return []
  header, trials = read_trials(trials_path)
  if header.get('search') != identity['search']:
    raise workdir_lib.PathError(
        f'--workdir={workdir} holds the trials of another search (another '
        f'config, data or search flag; {TRIALS}); nothing was changed. '
        f'Rerun with the flags of that search to resume it, or pass '
        f'--overwrite to discard its trials.')
  return trials


def read_trials(path: str) -> tuple[dict, list]:
  """(header, trials) of a trials file; a line cut short by an interrupt
  is dropped."""
  header, trials = {}, []
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f):
      try:
        value = json.loads(line)
      except ValueError:
        continue
      if number == 0 and 'search' in value:
        header = value
      elif isinstance(value, dict) and 'lr' in value:
        trials.append({k: (math.nan if v is None and k.startswith('val_')
                           else v) for k, v in value.items()})
  return header, trials


class TrialLog:
  """autotune_trials.jsonl: the header, then each trial as it finishes
  (flushed and synced per batch, so an interrupt keeps them)."""

  def __init__(self, path: str, identity: dict, kept: list):
    self.path = path
    fresh = not os.path.isfile(path)
    self._file = open(path, 'a', encoding='utf-8')  # pylint: disable=consider-using-with
    if fresh:
      self._file.write(json.dumps(dict(search=identity['search'],
                                       files=identity['files'])) + '\n')
      self._file.flush()
    _KEPT.update(count=len(kept), path=path)

  def write(self, trials: list) -> None:
    for trial in trials:
      self._file.write(json.dumps(_finite_or_none(trial)) + '\n')
    self._file.flush()
    os.fsync(self._file.fileno())
    _KEPT['count'] += len(trials)

  def close(self) -> None:
    self._file.close()


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


def run(config, workdir: str, options, overwrite: bool = False) -> dict:
  """The search and its outputs (see the module docstring)."""
  from linjax.engine import autotune  # pylint: disable=g-import-not-at-top
  from linjax.engine.training import TrainingDiverged  # pylint: disable=g-import-not-at-top
  from linjax.cli import run_checks  # pylint: disable=g-import-not-at-top
  config_check.validate(config)   # a bad flag fails before the workdir
  identity = search_identity(config, options)
  kept = prepare_workdir(workdir, overwrite, identity)
  run_options, splits, featurizer, train_x, val_x, featurize_seconds = (
      run_data.featurise_for_validation(config, workdir, 'autotune'))
  label_checks.check_training_labels(
      multilabel_run.flat_label_names(splits.train_y,
                                      splits.label_map.names),
      len(splits.train_texts), run_options.training.loss,
      config.data.label_separator, config.data.lenient)
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
  if kept:
    logging.info('autotune: resuming with the %d trial(s) kept in %s',
                 len(kept), os.path.join(workdir, TRIALS))
  # The rule that stops `train` (an epoch's mean loss > 100 x the initial
  # loss) excludes a trial, so the chosen configuration trains.
  guard = run_checks.DivergenceGuard(len(names),
                                     run_options.optimizer.learning_rate,
                                     run_options.training.loss)

  def epoch_check(epoch: int, loss: float) -> None:
    try:
      guard.check_epoch(epoch, loss)
    except TrainingDiverged as e:   # without the advice for the base lr
      raise run_checks.LossExploded(str(e).split(' Try ')[0]) from None

  log = TrialLog(os.path.join(workdir, TRIALS), identity, kept)
  try:
    result = autotune.autotune(train_x, splits.train_y, len(names),
                               val_x=val_x, val_y=splits.val_y,
                               optimizer=run_options.optimizer,
                               training=searched, options=options,
                               log=logging.info, epoch_check=epoch_check,
                               on_trials=log.write, previous=kept)
  except TrainingDiverged:
    lr = run_options.optimizer.learning_rate
    lo, hi = tuple(options.learning_rate) or (lr / 16.0, lr * 4.0)
    fix = (f'leave --learning_rates out (the range around '
           f'--config.optimizer.learning_rate={lr:g}: {lr / 16:g} to '
           f'{lr * 4:g})' if options.learning_rate and lo > lr / 16 else
           f'a lower range, e.g. --learning_rates={lo / 64:g},{lo:g}')
    raise config_check.ConfigError(
        f'every configuration trained on all the data diverged (learning '
        f'rates {lo:g} to {hi:g}). Fix: {fix}') from None
  finally:
    log.close()
  best = result.best
  diverged = sum(bool(t.get('diverged')) for t in result.trials)
  if diverged:
    logging.warning('%d of %d trials diverged (an epoch\'s mean training '
                    'loss above %g x the initial loss) and were excluded.',
                    diverged, len(result.trials), run_checks.EPOCH_FACTOR)
  guard.check_model(best['train_loss'])
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
  # `linjax train --config=best_config.py` saves the model refit on train +
  # validation (linjax/cli/refit.py): the test metrics are that model's.
  params = result.params
  chosen = chosen_config(config, best, searched.token_budget)
  chosen_options = config_check.validate(chosen)
  from linjax.cli import refit  # pylint: disable=g-import-not-at-top
  if refit.applies(chosen, chosen_options, bool(splits.val_texts)) and (
      splits.pool_order is not None):
    with console.phase(f'refitting the chosen configuration on '
                       f'{len(splits.train_texts) + len(splits.val_texts)} '
                       f'training and validation documents'):
      params, featurizer, epochs = refit_as_train(chosen_options, splits,
                                                  len(names))
    out['refit'] = dict(epochs=epochs, num_docs=len(splits.train_texts) +
                        len(splits.val_texts))
  out.update(run_data.test_scores(params, featurizer, splits,
                                  out.get('threshold')))
  out['peak_rss_mb'] = resource.getrusage(
      resource.RUSAGE_SELF).ru_maxrss / 1024
  out['resumed_trials'] = len(kept)
  write_config(
      os.path.join(workdir, 'best_config.py'),
      chosen,
      f'Chosen by linjax autotune on '
      f'{datetime.date.today().isoformat()}: validation accuracy '
      f'{best["val_accuracy"]:.4f} with optimizer.learning_rate='
      f'{best["lr"]:.6g}, train.l2={best["l2"]:.3g}, train.epochs='
      f'{best["epochs"]}.')
  table = format_table(result.trials, best)
  workdir_lib.write_atomic(os.path.join(workdir, 'autotune.txt'),
                           table + '\n')
  png = os.path.join(workdir, 'autotune.png')
  plot(result.trials, png + '.tmp.png')
  os.replace(png + '.tmp.png', png)
  # Last: its presence marks the search finished.
  workdir_lib.write_atomic(os.path.join(workdir, RESULT),
                           json.dumps(_finite_or_none(out), indent=1))
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
        f'linjax train --config='
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
  console.short_log_format()
  # A failed search removes what it added to --workdir; an interrupted one
  # keeps its trials (linjax.cli.main prints the line).
  with workdir_lib.cleaned_up_on_failure(
      FLAGS.workdir, finished=RESULT):
    with config_check.runner_main(argv, workdir=FLAGS.workdir):
      options = autotune_options()
      run(FLAGS.config, FLAGS.workdir, options, FLAGS.overwrite)


def command() -> None:
  """``linjax autotune``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
