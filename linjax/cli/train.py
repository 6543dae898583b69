r"""Trains and evaluates a linear text classifier; writes everything to workdir.

  python -m experiments.train --config=linjax/cli/configs/default.py \
      --workdir=/tmp/linjax-demo [--config.optimizer.learning_rate=0.5 ...]

``--help`` lists every config key with its default. The work is
`train_and_evaluate(config, workdir)`; `main` only parses flags and turns
errors a user can cause into a one-line message and exit status 1, and
Ctrl-C or SIGTERM into one line and exit status 130 or 143 (rerun the same
command to resume from the last checkpoint).

Steps: validate the config and the workdir (before any work: a finished run
there is refused unless ``--overwrite``); load the data (``data.train`` or
the demo corpus; ``data.test`` or a stratified held-out split of
``data.test_fraction``; a stratified validation split ``data.val_fraction``
carved from train); fit the featurizer on the training split only; a
three-way gradient check on a few documents (in a background thread);
`linjax.engine.training.fit` (the config becomes the library's options in
linjax/cli/config_check.py), stopped if the loss explodes
(linjax/cli/run_checks.py); once validation has chosen, train the saved
model again on train + validation (``data.refit``, linjax/cli/refit.py);
evaluate on the test split (used only here). results.json's ``timeline``
records each phase's start and end in seconds since the process started.
With ``train.loss=sigmoid`` the data are multi-label and the run tunes the
threshold on the validation split (linjax/cli/multilabel_run.py).
On several processes (``--coordinator_address --num_processes
--process_id``, the JAX_* variables, SLURM or Open MPI), each reads only its
part of the data and they train the 1-process model; process 0 alone writes
and prints (linjax/cli/multiprocess_run.py).
Writes into workdir (each file atomically, see linjax/cli/workdir.py):

  results.json      test/val metrics, timings, gradient check, config
  metrics.jsonl     one line per epoch
  model/            the saved model (see linjax/saved_model.py)
  test_split.jsonl  the held-out test split, when carved from data.train
  curves.png, confusion_matrix.png, templates.png
                    only with --plots (or later: linjax plots --workdir=DIR)
  checkpoints/      while training (the newest train.keep_checkpoints);
                    removed after a successful run unless
                    train.remove_checkpoints is False
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app
from absl import flags
from absl import logging

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import finish_run
from linjax.cli import label_checks
from linjax.cli import multilabel_run
from linjax.cli import multiprocess_run
from linjax.cli import refit
from linjax.cli import report_texts
from linjax.cli import run_data
from linjax.cli import run_timeline
from linjax.cli import workdir as workdir_lib

# Re-exported: the other runners and benchmarks/ take these from here.
from linjax.cli.runner_flags import DEFAULT_CONFIG  # pylint: disable=unused-import
from linjax.cli.runner_flags import define_config_flag
from linjax.cli.runner_flags import parse_flags
from linjax.cli.run_data import load_splits  # pylint: disable=unused-import
from linjax.cli.run_data import Splits  # pylint: disable=unused-import
from linjax.cli.run_data import start_precompile

FLAGS = flags.FLAGS


def define_flags() -> None:
  """--config and --workdir; defined only when run as a program, so that
  other runners can import this module's functions without flag clashes."""
  define_config_flag('Training configuration file (a python file with '
                     'get_config()); override keys with '
                     '--config.section.key=value.')
  flags.declare_key_flag('config')  # listed by --help (defined in cli.py)
  flags.DEFINE_string('workdir', None, 'Directory to write results, the '
                      'saved model and plots into (created if needed).')
  flags.DEFINE_bool('overwrite', False, 'Replace a finished run in --workdir '
                    '(its model, results and plots).')
  flags.DEFINE_bool('plots', False, 'Also draw curves.png, '
                    'confusion_matrix.png and templates.png in the run '
                    '(matplotlib; report.html shows the same; later: '
                    'linjax plots --workdir=DIR).')
  multiprocess_run.define_flags()
  for name in multiprocess_run.FLAG_NAMES:   # listed by --help
    flags.declare_key_flag(name.lstrip('-'))


def quick_gradcheck(*args, **kwargs):
  """`linjax.cli.run_checks.quick_gradcheck` (imported on first use)."""
  from linjax.cli import run_checks  # pylint: disable=g-import-not-at-top
  return run_checks.quick_gradcheck(*args, **kwargs)


def _fit(options, train_x, train_y, num_classes, val_x, val_y,
         checkpoint_dir, callback, keep: int, overwrite: bool,
         group: multiprocess_run.Group):
  """`training.fit`; refused checkpoints end the run, or with --overwrite
  are discarded (and training starts over)."""
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top

  def fit():
    with checkpoint.retaining(keep):
      return training.fit(
          train_x, train_y, num_classes,
          optimizer=options.optimizer, training=options.training,
          val_x=val_x, val_y=val_y if val_x is not None else None,
          callback=callback, checkpoint_dir=checkpoint_dir)
  try:
    return fit()
  except checkpoint.CheckpointError as e:
    if not overwrite:
      resume = ('rerun with the config and data of that run to resume it, '
                if 'another config' in str(e) else '')
      raise checkpoint.CheckpointError(
          f'{e} Nothing was changed: {resume}choose another --workdir, or '
          f'pass --overwrite to discard the checkpoints.') from None
    logging.warning('--overwrite: discarding the checkpoints in %s (%s)',
                    checkpoint_dir, config_check.one_line(e))
    group.remove_checkpoints(checkpoint_dir)
    return fit()


def train_and_evaluate(config, workdir: str, overwrite: bool = False,
                       stage: console.Stage | None = None,
                       group: multiprocess_run.Group | None = None,
                       plots: bool = False) -> dict:
  """Runs one experiment and writes its outputs into ``workdir``.

  Args:
    config: a ConfigDict with the keys of linjax/cli/configs/default.py.
    workdir: output directory (created if needed).
    overwrite: replace a finished run in ``workdir`` (else refused).
    stage: updated with the run's progress (for the interrupt message).
    group: the run's processes (`multiprocess_run.join`; None: this one).
    plots: also draw the PNG plots (`finish_run.write_plots`).

  Returns:
    The results dict also written to ``workdir/results.json``.

  Raises:
    ConfigError: a bad config value (before any work).
    PathError: ``workdir`` is not a writable folder, or holds a finished
      run and ``overwrite`` is False (before any work).
    DataError: bad input data.
    TrainingDiverged: the loss became non-finite or exploded.
  """
  timeline = run_timeline.Timeline()
  timeline.add('start', 0.0, run_timeline.now())   # interpreter, imports
  options = config_check.validate(config)
  from linjax.cli import report as report_cli  # pylint: disable=g-import-not-at-top
  report_cli.check_config(config)   # report.max_docs, before any work
  from linjax.cli import stream_data  # pylint: disable=g-import-not-at-top
  if stream_data.streams(config, options):  # larger than memory: out of core
    from linjax.cli import stream_run  # pylint: disable=g-import-not-at-top
    return stream_run.train_and_evaluate(config, workdir, overwrite, stage,
                                         plots=plots, timeline=timeline)
  group = group or multiprocess_run.Group(None)
  run = group.prepare_workdir(workdir, overwrite,
                              bool(options.training.checkpoint_every))
  stage = stage or console.Stage()
  if options.training.checkpoint_every and group.is_writer:  # it prunes
    stage.checkpoint_dir = run.join(workdir_lib.CHECKPOINTS)
    stage.keep_checkpoints = int(config.train.keep_checkpoints)
  # Heavy imports after the checks, so a bad flag fails at once.
  with timeline.phase('imports'):
    from linjax.cli import run_checks  # pylint: disable=g-import-not-at-top
    from linjax import saved_model  # pylint: disable=g-import-not-at-top
    from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
    from linjax.engine.options import train_loss  # pylint: disable=g-import-not-at-top
    from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
    run_data.enable_compile_cache(config)

  stage.phase = 'reading the data'
  source = config.data.train or 'the demo corpus'
  if os.path.isfile(source):
    source += f' ({workdir_lib.format_bytes(os.path.getsize(source))})'
  with timeline.phase('read'), console.phase(f'reading {source}'):
    splits = group.load_splits(config)
  load_seconds = timeline.seconds('read')
  names = splits.label_map.names
  logging.info('%d train, %d validation, %d test documents in %d classes',
               *(group.total(len(texts)) for texts in (
                   splits.train_texts, splits.val_texts, splits.test_texts)),
               len(names))
  label_checks.check_training_labels(   # stops wrong-looking labels
      multilabel_run.flat_label_names(splits.train_y, names),
      group.total(len(splits.train_texts)), options.training.loss,
      config.data.label_separator, config.data.lenient)

  stage.phase = 'featurising'
  refits = refit.applies(config, options, bool(splits.val_texts),
                         group.count) and splits.pool_order is not None
  pool = None
  # F and C are known: the training program is traced here (Python, on
  # the main thread) and compiled on a thread while the text is featurised.
  with timeline.phase('trace'):
    start_precompile(options, splits.train_texts + (
        splits.val_texts if refits else []), len(names))
  with timeline.phase('featurise'):
    featurizer = Featurizer.from_options(options.features)
    if refits:   # one featuriser for both fits (linjax/cli/refit.py)
      with console.phase(f'featurising {len(splits.train_texts)} training '
                         f'and {len(splits.val_texts)} validation documents'):
        pool = refit.featurise_pool(featurizer, splits)
        train_x, val_x = pool.train_x, pool.val_x
    else:
      with console.phase(f'featurising {len(splits.train_texts)} training '
                         'documents'):
        train_x = group.fit_transform(featurizer, splits.train_texts)
      with console.phase(f'featurising {len(splits.val_texts)} validation '
                         'documents'):
        # Every process, or none, has a split (some parts may be empty).
        val_x = (featurizer.transform(splits.val_texts)
                 if group.total(len(splits.val_texts)) else None)
    with console.phase(f'featurising {len(splits.test_texts)} test '
                       'documents'):
      test_x = (featurizer.transform(splits.test_texts)
                if group.total(len(splits.test_texts)) else None)
  # The gradient check starts once featurising is done: its tracing holds
  # the GIL, which slows featurisation's short numpy calls 2-3x; beside
  # training, the main thread mostly waits for the device.
  gradcheck_job = None
  if config.train.gradcheck and group.is_writer:
    gradcheck_job = run_checks.GradcheckInBackground(
        train_x, splits.train_y, len(names), float(options.training.l2),
        seed=options.training.seed, loss=train_loss(options.training))
  featurize_seconds = timeline.seconds('featurise')
  logging.info('F=%d features, %d non-zeros in train (%.2f s)',
               featurizer.num_features, train_x.nnz, featurize_seconds)

  # The run proceeds: only now is a finished run's record replaced.
  checkpoint_dir = run.join(workdir_lib.CHECKPOINTS)
  if run.finished:
    group.forget_finished_run(run)
  epochs = options.training.epochs
  guard = run_checks.DivergenceGuard(len(names),
                                     options.optimizer.learning_rate,
                                     train_loss(options.training))
  log = workdir_lib.MetricsLog(run.join(workdir_lib.METRICS))
  progress = console.Progress('epoch', epochs, every=0)

  def callback(entry: dict) -> None:
    guard.check_epoch(entry['epoch'], entry['train_loss'])
    if group.is_writer:
      log.write(saved_model.jsonable(entry))
    stage.epochs_done = entry['epoch']
    progress.update(entry['epoch'], (
        f'train loss {finish_run.fmt(entry.get("train_loss"))}, val loss '
        f'{finish_run.fmt(entry.get("val_loss"))}, val accuracy '
        f'{finish_run.fmt(entry.get("val_accuracy"))}, '
        f'{entry.get("tokens_per_s") or 0.0:.0f} tokens/s'))

  logging.info('training: %s loss, %s, lr %g, %s schedule, %d epochs',
               options.training.loss, options.optimizer.name,
               options.optimizer.learning_rate,
               options.optimizer.schedule, epochs)
  every = options.training.checkpoint_every
  stage.epochs_done = checkpoint.latest_epoch(checkpoint_dir) or 0
  stage.training = True
  try:
    first = options
    if pool is not None:   # the slot budget of the refit's program
      first = options._replace(training=refit.first_fit_options(
          options.training, pool.x))
    with timeline.phase('train'):
      fit = _fit(first, train_x, splits.train_y, len(names), val_x,
                 splits.val_y, checkpoint_dir if every else None, callback,
                 int(config.train.keep_checkpoints), overwrite, group)
  finally:
    log.close()
  if group.is_writer:
    log.finish(saved_model.jsonable(fit.history))
  refit_fit = first_val = None
  if pool is not None:
    # The first fit's params serve only its validation metrics: take them
    # now and drop the [F, C] weights before the refit builds its own
    # (fortunes: 92 MB of the refit run's peak).
    first_val = group.evaluate(fit.params, val_x, splits.val_y,
                               train_loss(options.training))
    fit = dataclasses.replace(fit, params=None)
    stage.phase = 'refitting on train + validation'
    second = options._replace(training=refit.options_for(options.training,
                                                          fit))
    logging.info('refitting on %d train + validation documents, %d passes '
                 '(data.refit)', pool.x.num_docs, second.training.epochs)
    refit_progress = console.Progress('refit epoch', second.training.epochs,
                                      every=0)

    def refit_callback(entry: dict) -> None:
      guard.check_epoch(entry['epoch'], entry['train_loss'])
      stage.epochs_done = entry['epoch']
      refit_progress.update(entry['epoch'], (
          f'train loss {finish_run.fmt(entry.get("train_loss"))}'))

    # No checkpoints: an interrupted refit is redone from the first fit's.
    with timeline.phase('refit'):
      refit_fit = _fit(second, pool.x, pool.y, len(names), None, None, None,
                       refit_callback, int(config.train.keep_checkpoints),
                       overwrite, group)
    pool = None
  stage.training, stage.phase = False, 'evaluating'

  trained = finish_run.Trained(
      config=config, options=options, workdir=workdir, run=run, fit=fit,
      featurizer=featurizer, label_map=splits.label_map, train_x=train_x,
      train_y=splits.train_y, val_x=val_x, val_y=splits.val_y, test_x=test_x,
      test_y=splits.test_y, num_train=group.total(len(splits.train_texts)),
      num_val=group.total(len(splits.val_texts)),
      num_test=group.total(len(splits.test_texts)),
      load_seconds=load_seconds, featurize_seconds=featurize_seconds,
      where=group.describe(), guard=guard, gradcheck_job=gradcheck_job,
      test_texts=(report_texts.ProcessTexts(group, splits.test_texts)
                  if group.multi else splits.test_texts),
      refit=refit_fit, first_val=first_val, timeline=timeline,
      plots=plots)
  write_test_split = None
  # Several processes: each holds a part of the test split (not gathered).
  if splits.test_texts and not config.data.test and not group.multi:
    def write_test_split(path: str) -> None:
      workdir_lib.write_atomic(path, workdir_lib.split_as_jsonl(
          splits.test_texts,
          multilabel_run.label_names(splits.test_y, names),
          config.data.text_column, config.data.label_column))
  return finish_run.finish(trained, finish_run.Scoring(
      evaluate=group.evaluate,
      predict_test=lambda params, x, y, loss='softmax': group.gather_rows(
          y, finish_run.predict_with_progress(params, x, loss=loss)),
      write_test_split=write_test_split, is_writer=group.is_writer), stage)


def _exit_at_once() -> None:
  """Ends a finished run's process without the interpreter's teardown.

  Every file of the run is written and closed by now; what is left is
  freeing JAX's and XLA's objects one by one (0.2 s of a 2.9 s run,
  measured on sms_spam), which no one waits for. Several processes exit
  normally (the distributed client's shutdown runs at exit).
  """
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


def main(argv):
  import signal  # pylint: disable=g-import-not-at-top
  console.short_log_format()
  stage = console.Stage()
  try:
    with console.raise_on_signals(), workdir_lib.cleaned_up_on_failure(
        FLAGS.workdir):   # a failed run leaves the workdir as it found it
      with config_check.runner_main(argv, workdir=FLAGS.workdir):
        # Before any JAX call: join the other processes, if any.
        group = multiprocess_run.join(
            FLAGS.config, FLAGS.coordinator_address, FLAGS.num_processes,
            FLAGS.process_id)
        train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.overwrite,
                           stage, group, plots=FLAGS.plots)
    if not group.multi and sys.getprofile() is None and (
        sys.gettrace() is None):   # a profiler or coverage writes at exit
      _exit_at_once()
  except console.Interrupted as e:
    for s in (signal.SIGINT, signal.SIGTERM):
      signal.signal(s, signal.SIG_IGN)   # a second Ctrl-C changes nothing
    sys.stderr.write(stage.interrupted_line() + '\n')
    console.exit_process(e.exit_code)
  except SystemExit as e:   # a one-line user error
    console.exit_process(e.code)


def command() -> None:
  """``linjax train``: defines the flags, parses them and runs `main`."""
  define_flags()
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  command()
