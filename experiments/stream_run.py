"""`experiments.train`'s run when the corpus is read out of core.

`train_and_evaluate` is `experiments.train.train_and_evaluate` for a corpus
that experiments/stream_data.py streams (single labels, one process): the
same steps, files and results, with the data on disk in the workdir while
the run lasts. Differences a user sees: the saved model's bucket names come
from the training documents of the first chunk of ``data.train`` (a
sample; `interpret` and explanations use them), ``results.json`` has
``streamed: true``, the gradient check runs on the first 256 training
documents, and the program is compiled when training starts (the number of
classes is known only once the file is read).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from absl import logging
import numpy as np

from experiments import config_check
from experiments import console
from experiments import stream_data
from experiments import workdir as workdir_lib


def _fit(options, data, checkpoint_dir, callback, keep: int,
         overwrite: bool):
  """`training.fit` on the training store, as the in-memory runner's."""
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top

  def fit():
    with checkpoint.retaining(keep):
      return training.fit(
          data.train_x, data.train_y, data.label_map.num_classes,
          optimizer=options.optimizer, training=options.training,
          val_x=data.val_x,
          val_y=data.val_y if data.val_x is not None else None,
          callback=callback, checkpoint_dir=checkpoint_dir)
  try:
    return fit()
  except checkpoint.CheckpointError as e:
    if not overwrite:
      raise checkpoint.CheckpointError(
          f'{e} Nothing was changed: choose another --workdir, or pass '
          f'--overwrite to discard the checkpoints.') from None
    checkpoint.remove(checkpoint_dir)
    return fit()


def train_and_evaluate(config, workdir: str, overwrite: bool = False,
                       stage: console.Stage | None = None,
                       chunk_bytes: int = stream_data.CHUNK_BYTES) -> dict:
  """As `experiments.train.train_and_evaluate` (see module docstring)."""
  options = config_check.validate(config)
  run = workdir_lib.prepare(workdir, overwrite)
  stage = stage or console.Stage()
  from experiments import run_checks  # pylint: disable=g-import-not-at-top
  from experiments import train as train_runner  # pylint: disable=g-import-not-at-top
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.analysis import interpret  # pylint: disable=g-import-not-at-top
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from linjax.engine import chunk_program  # pylint: disable=g-import-not-at-top

  if config.train.compile_cache:
    chunk_program.enable_compile_cache(
        os.path.expanduser(config.train.compile_cache))
  folder = tempfile.mkdtemp(prefix='.stream-', dir=workdir)
  try:
    stage.phase = 'reading and featurising the data'
    with console.phase(f'reading and featurising {config.data.train} '
                       f'({workdir_lib.format_bytes(os.path.getsize(config.data.train))}) '
                       f'in chunks of {workdir_lib.format_bytes(chunk_bytes)}'
                       ' (out of core)'):
      data = stream_data.read_and_featurise(config, options, folder,
                                            chunk_bytes)
    names = data.label_map.names
    num_val = 0 if data.val_x is None else data.val_x.num_docs
    num_test = 0 if data.test_x is None else data.test_x.num_docs
    logging.info('%d train, %d validation, %d test documents in %d classes; '
                 'F=%d features, %d non-zeros in train',
                 data.train_x.num_docs, num_val, num_test, len(names),
                 data.featurizer.num_features, data.train_x.nnz)
    run_checks.warn_about_labels(np.repeat(   # one name per document
        np.asarray(names, object),
        np.bincount(data.train_y, minlength=len(names))).tolist())
    gradcheck_job = None
    if config.train.gradcheck:
      n = min(256, data.train_x.num_docs)
      gradcheck_job = run_checks.GradcheckInBackground(
          data.train_x.take(np.arange(n)), data.train_y[:n], len(names),
          float(options.training.l2), seed=options.training.seed,
          loss=options.training.loss)

    checkpoint_dir = run.join(workdir_lib.CHECKPOINTS)
    if run.finished:
      workdir_lib.forget_finished_run(run)
    guard = run_checks.DivergenceGuard(len(names),
                                       options.optimizer.learning_rate,
                                       options.training.loss)
    log = workdir_lib.MetricsLog(run.join(workdir_lib.METRICS))
    progress = console.Progress('epoch', options.training.epochs, every=0)

    def callback(entry: dict) -> None:
      guard.check_epoch(entry['epoch'], entry['train_loss'])
      log.write(saved_model.jsonable(entry))
      stage.epochs_done = entry['epoch']
      progress.update(entry['epoch'], (
          f'train loss {entry["train_loss"]:.4f}, '
          f'{entry.get("tokens_per_s") or 0.0:.0f} tokens/s'))

    every = options.training.checkpoint_every
    stage.epochs_done = checkpoint.latest_epoch(checkpoint_dir) or 0
    stage.training = True
    try:
      fit = _fit(options, data, checkpoint_dir if every else None, callback,
                 int(config.train.keep_checkpoints), overwrite)
    finally:
      log.close()
    stage.training, stage.phase = False, 'evaluating'
    log.finish(saved_model.jsonable(fit.history))

    results = dict(
        num_classes=len(names), num_features=data.featurizer.num_features,
        num_train=data.train_x.num_docs, num_val=num_val, num_test=num_test,
        labels=list(names), epochs_run=fit.epochs_run,
        best_epoch=fit.best_epoch, update=fit.update,
        load_seconds=data.load_seconds,
        featurize_seconds=data.featurize_seconds,
        compile_seconds=fit.compile_seconds, train_seconds=fit.train_seconds,
        pack_seconds=fit.pack_seconds, streamed=True)
    train_eval = stream_data.evaluate(fit.params, data.train_x, data.train_y)
    results['train_accuracy'] = float(train_eval['accuracy'])
    results['train_loss'] = float(train_eval['loss'])
    results['worse_than_initial'] = guard.check_model(results['train_loss'])
    results['val_accuracy'] = results['val_loss'] = None
    if data.val_x is not None:
      val_eval = stream_data.evaluate(fit.params, data.val_x, data.val_y)
      results['val_accuracy'] = float(val_eval['accuracy'])
      results['val_loss'] = float(val_eval['loss'])
    report = None
    if data.test_x is not None:
      proba = stream_data.predict_proba(fit.params, data.test_x)
      report = metrics.classification_report(data.test_y, proba, names)
      del proba
    results.update(
        test_accuracy=report and report['accuracy'],
        test_macro_f1=report and report['macro_f1'],
        test_log_loss=report and report['log_loss'],
        test_ece=report and report['ece'], test_report=report)
    results['config'] = config.to_dict()
    results = saved_model.jsonable(results)

    stage.phase = 'saving the model'
    top = interpret.top_features(fit.params, data.featurizer, names, k=10)
    summary = {k: results[k] for k in (
        'test_accuracy', 'test_macro_f1', 'val_accuracy', 'train_seconds',
        'num_classes', 'num_features', 'epochs_run')}
    model_dir = run.join(workdir_lib.MODEL)
    saved_model.save(model_dir, fit.params, data.featurizer, data.label_map,
                     config, extra=summary, loss=options.training.loss)
    results['model_bytes'] = workdir_lib.disk_size(model_dir)
    results['plots'] = train_runner._write_plots(  # pylint: disable=protected-access
        workdir, fit.history, report, top, names)
    if data.test_idx is not None and data.test_idx.size:
      results['test_split'] = run.join(workdir_lib.TEST_SPLIT)
      stream_data.write_test_split(results['test_split'], config,
                                   data.test_idx)
    results['gradcheck'] = None
    if gradcheck_job is not None:
      check = gradcheck_job.result()
      (logging.info if check.passed else logging.warning)('%s', check.format())
      results['gradcheck'] = saved_model.jsonable(dict(
          passed=check.passed, num_params=check.num_params,
          max_rel_error=check.max_rel_error, seconds=check.seconds))
    workdir_lib.write_atomic(run.join(workdir_lib.RESULTS),
                             json.dumps(results, indent=1))
    if every and config.train.remove_checkpoints:
      checkpoint.remove(checkpoint_dir)
  finally:
    shutil.rmtree(folder, ignore_errors=True)
  print(f'test accuracy {results["test_accuracy"] or float("nan"):.4f}  '
        f'macro-F1 {results["test_macro_f1"] or float("nan"):.4f}  val '
        f'accuracy {results["val_accuracy"] or float("nan"):.4f}  '
        f'({results["epochs_run"]} epochs, train '
        f'{results["train_seconds"]:.2f} s, featurise '
        f'{results["featurize_seconds"]:.2f} s, out of core)')
  print(f'wrote {workdir}/results.json and {model_dir}')
  return results
