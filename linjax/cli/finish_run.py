"""Finishing a training run: results.json, the saved model, plots, a summary.

The in-memory runner (linjax/cli/train.py), its multi-process variant
(linjax/cli/multiprocess_run.py) and the out-of-core one
(linjax/cli/stream_run.py) read and train differently but finish alike:
`finish` takes the `Trained` run and its `Scoring`, what differs between
them (how the splits are scored: in memory, per chunk or summed over the
processes; who writes), evaluates the model on train, validation and test,
saves it, draws the plots, writes results.json and prints the summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any, Callable

from absl import logging
import numpy as np

from linjax.cli import console
from linjax.cli import label_checks
from linjax.cli import multilabel_run
from linjax.cli import workdir as workdir_lib


@dataclasses.dataclass
class Trained:
  """A trained run, as the runner that trained it hands it over.

  Attributes:
    config: the runner's ConfigDict; options: its `config_check.RunOptions`.
    workdir: the output folder; run: its `workdir.State`.
    fit: the `training.FitResult`.
    featurizer, label_map: fitted on the training split.
    train_x, train_y: this process's training documents (features [N, F],
      labels [N] or [N, C] multi-hot); val_x, val_y and test_x, test_y the
      same for validation and test (x None: no such split).
    num_train, num_val, num_test: the documents of each split (all processes).
    load_seconds, featurize_seconds: the timings of reading and featurising.
    where: results.json's record of where it ran (``num_processes`` and
      ``num_devices``, or ``streamed``).
    guard: the run's `run_checks.DivergenceGuard`.
    gradcheck_job: a `run_checks.GradcheckInBackground` or None.
    test_texts: the test split's texts (for report.html), a source that
      reads them on demand (linjax/cli/report_texts.py), or None.
    refit: the `FitResult` of the refit on train + validation
      (linjax/cli/refit.py), whose params are the saved model's; None: the
      saved model is ``fit``'s.
    timeline: the run's `run_timeline.Timeline` (None: a new one).
    plots: draw the PNG plots (`write_plots`).
  """
  config: Any
  options: Any
  workdir: str
  run: workdir_lib.State
  fit: Any
  featurizer: Any
  label_map: Any
  train_x: Any
  train_y: np.ndarray
  val_x: Any
  val_y: np.ndarray | None
  test_x: Any
  test_y: np.ndarray | None
  num_train: int
  num_val: int
  num_test: int
  load_seconds: float
  featurize_seconds: float
  where: dict
  guard: Any
  gradcheck_job: Any = None
  test_texts: list | None = None
  refit: Any = None
  # The first fit's validation metrics, taken before the refit (which
  # drops the first fit's params).
  first_val: dict | None = None
  timeline: Any = None
  plots: bool = False

  @property
  def params(self):
    """The saved model's params: the refit's, else the fit's."""
    return (self.refit or self.fit).params


@dataclasses.dataclass
class Scoring:
  """What the ways of running differ in when they finish.

  Attributes:
    evaluate: ``(params, x, y, loss) -> dict(loss, accuracy)`` over every
      process, the mean of the trained ``loss``.
    predict_test: ``(params, x, y, loss='softmax') -> (y, proba [N, C])``
      of the whole split (the test split, or the validation split of a
      multi-label run's threshold; gathered from every process); the
      scores themselves for a loss without probabilities (hinge).
    write_test_split: writes the carved test split as JSONL to the path it
      is given; None: no test split to write.
    is_writer: whether this process writes into the workdir and prints.
    streamed: the out-of-core run's shorter summary (no top features, model
      size or gradient-check wait).
  """
  evaluate: Callable[..., dict]
  predict_test: Callable[..., tuple]
  write_test_split: Callable[[str], None] | None = None
  is_writer: bool = True
  streamed: bool = False


SUMMARY_CLASSES = 10   # classes whose top features the summary prints
# results.json's train metrics: on at most this many training documents, a
# uniform sample of a larger split (the standard error of an accuracy on
# 2^15 documents is at most 0.28 point; scoring all 365,000 of healthtweets
# x8 took longer than its training epoch).
TRAIN_EVAL_DOCS = 1 << 15


def fmt(value, spec: str = '.4f') -> str:
  """``value`` formatted, or 'n/a' for None."""
  return 'n/a' if value is None else format(value, spec)


def predict_with_progress(params, x, chunk: int = 16384,
                          loss='softmax') -> np.ndarray:
  """Class probabilities [N, C] of ``x`` (the probability map of
  ``loss``; the scores for a loss without one), in chunks of whole scoring
  batches."""
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  predict = (scoring.predict_proba if losses.get_loss(loss).has_probabilities
             else lambda params, x, loss: scoring.predict_logits(params, x))
  progress = console.Progress('evaluating', x.num_docs, 'documents')
  parts = []
  for start in range(0, x.num_docs, chunk):
    rows = np.arange(start, min(start + chunk, x.num_docs))
    parts.append(np.asarray(predict(params, x.take(rows), loss=loss)))
    progress.update(int(rows[-1]) + 1)
  if not parts:   # a process of a multi-process run with no test document
    return np.zeros((0, np.shape(params.b)[-1]), np.float32)
  return np.concatenate(parts)


def write_plots(workdir: str, history, report, top, label_names) -> list:
  """curves.png, confusion_matrix.png (when ``report``) and templates.png,
  each drawn under a temporary name and renamed into place; their paths."""
  try:
    from linjax.analysis import plots  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # matplotlib missing: the run is still useful.
    logging.warning('plots skipped: %s', e)
    return []
  tmp = tempfile.mkdtemp(prefix='.plots-', dir=workdir)
  try:
    drawn = [plots.training_curves(history, os.path.join(tmp, 'curves.png'))]
    if report is not None:
      drawn.append(plots.confusion_matrix(
          report['confusion_matrix'], label_names,
          os.path.join(tmp, 'confusion_matrix.png')))
    drawn.append(plots.templates(top, os.path.join(tmp, 'templates.png')))
    written = []
    for path in map(str, drawn):
      written.append(os.path.join(workdir, os.path.basename(path)))
      os.replace(path, written[-1])
    return written
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def _training_sample(t: Trained):
  """(x, y) of the documents the train metrics are computed on: the
  training split, or `TRAIN_EVAL_DOCS` of them drawn uniformly (seed
  ``train.seed``) when it has more and the run has one process (several
  processes score their own parts in full)."""
  n = t.train_x.num_docs
  if n <= TRAIN_EVAL_DOCS or t.where.get('num_processes', 1) > 1:
    return t.train_x, t.train_y
  rows = np.sort(np.random.default_rng(t.options.training.seed).choice(
      n, TRAIN_EVAL_DOCS, replace=False))
  if hasattr(t.train_x, 'take_chunks'):   # on disk: one pass over the store
    x = next(iter(t.train_x.take_chunks(rows, np.array([0, rows.size]),
                                        read_entries=1 << 20)))
  else:
    x = t.train_x.take(rows)
  return x, np.asarray(t.train_y)[rows]


def _metrics(t: Trained, scoring: Scoring) -> tuple[dict, Any, Any, Any]:
  """results.json's counts, timings and metrics; the test report (single
  label), the multi-label threshold and the test split's (y, proba) for
  report.html, each None when there is none.

  The validation metrics are the first fit's (``t.fit``: the documents
  were held out from it); train and test metrics are the saved model's
  (``t.params``: the refit's when there is one).
  """
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax.engine.options import train_loss  # pylint: disable=g-import-not-at-top
  fit, names, params = t.fit, t.label_map.names, t.params
  # The loss that trained (its options bound): train and validation loss
  # are its mean, results.json names it.
  loss = train_loss(t.options.training)
  results = dict(loss=loss.name, 
      num_classes=len(names), num_features=t.featurizer.num_features,
      num_train=t.num_train, num_val=t.num_val, num_test=t.num_test,
      labels=list(names), epochs_run=fit.epochs_run, best_epoch=fit.best_epoch,
      update=fit.update, load_seconds=t.load_seconds,
      featurize_seconds=t.featurize_seconds,
      compile_seconds=fit.compile_seconds, train_seconds=fit.train_seconds,
      pack_seconds=fit.pack_seconds, **t.where)
  results['refit'] = None
  if t.refit is not None:
    results['refit'] = dict(
        epochs=t.refit.epochs_run, num_docs=t.num_train + t.num_val,
        train_seconds=t.refit.train_seconds,
        pack_seconds=t.refit.pack_seconds,
        compile_seconds=t.refit.compile_seconds)
    results['train_seconds'] += t.refit.train_seconds
  train_x, train_y = _training_sample(t)
  results['train_eval_docs'] = int(train_x.num_docs)
  train_eval = scoring.evaluate(params, train_x, train_y, loss)
  results['train_accuracy'] = float(train_eval['accuracy'])
  results['train_loss'] = float(train_eval['loss'])
  results['worse_than_initial'] = t.guard.check_model(results['train_loss'])
  results['val_accuracy'] = results['val_loss'] = None
  if t.val_x is not None:
    val_eval = t.first_val or scoring.evaluate(fit.params, t.val_x,
                                               t.val_y, loss)
    results['val_accuracy'] = float(val_eval['accuracy'])
    results['val_loss'] = float(val_eval['loss'])
  report = threshold = test_scores = None
  if multilabel_run.is_multilabel(t.options.training):
    # Val accuracy is P@1; the labels need a threshold, tuned on the whole
    # validation split (every process's part).
    threshold = multilabel_run.DEFAULT_THRESHOLD
    if t.val_x is not None:
      threshold = multilabel_run.threshold_of(*scoring.predict_test(
          fit.params, t.val_x, t.val_y, loss=loss)[::-1])
    results.update(threshold=threshold, test_accuracy=None,
                   test_macro_f1=None, test_micro_f1=None, test_report=None)
    if t.test_x is not None:
      test_y, proba = scoring.predict_test(params, t.test_x, t.test_y,
                                           loss=loss)
      results.update(multilabel_run.test_results(test_y, proba, names,
                                                 threshold))
      test_scores = (test_y, proba)
    return results, report, threshold, test_scores
  if t.test_x is not None:
    test_y, proba = scoring.predict_test(params, t.test_x, t.test_y,
                                         loss=loss)
    report = metrics.classification_report(
        test_y, proba, names, probabilities=loss.has_probabilities)
    label_checks.warn_about_labels([], report.get('absent_classes') or ())
    test_scores = (test_y, proba)
  results.update(
      test_accuracy=report and report['accuracy'],
      test_macro_f1=report and report['macro_f1'],
      test_log_loss=report and report['log_loss'],
      test_ece=report and report['ece'], test_report=report)
  return results, report, threshold, test_scores


def _gradcheck_record(t: Trained, scoring: Scoring, stage, timeline):
  """results.json's ``gradcheck`` (waits for the background check)."""
  if t.gradcheck_job is None:
    return None
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  stage.phase = 'finishing the gradient check'
  with timeline.phase('gradient check wait'):
    check = t.gradcheck_job.result()
  waited = timeline.seconds('gradient check wait')
  (logging.info if check.passed else logging.warning)('%s', check.format())
  record = dict(passed=check.passed, num_params=check.num_params,
                max_rel_error=check.max_rel_error, seconds=check.seconds)
  if not scoring.streamed:
    record['wait_seconds'] = waited
  span = getattr(t.gradcheck_job, 'span', None)
  if span is not None:
    timeline.add('gradient check (background)', *span)
  return saved_model.jsonable(record)


def finish(t: Trained, scoring: Scoring,
           stage: console.Stage | None = None) -> dict:
  """Evaluates, saves and reports a trained run.

  Every process evaluates (the metrics are global); the writer alone then
  saves the model into ``workdir/model``, writes the carved test split,
  draws the plots (``t.plots``), waits for the gradient check, writes
  results.json, removes the checkpoints (``train.remove_checkpoints``) and
  prints the summary. Each step is a phase of ``t.timeline``, recorded in
  results.json's ``timeline``.

  Args:
    t: the trained run.
    scoring: how it scores its splits, and who writes.
    stage: updated with the phase (for the interrupt message).

  Returns:
    The results dict (as written to ``workdir/results.json`` by the writer).
  """
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from linjax.cli import run_timeline  # pylint: disable=g-import-not-at-top
  stage = stage or console.Stage()
  timeline = t.timeline or run_timeline.Timeline()
  config, names = t.config, t.label_map.names
  with timeline.phase('evaluate'):
    results, report, threshold, test_scores = _metrics(t, scoring)
    results['config'] = config.to_dict()
    results = saved_model.jsonable(results)
  # Several processes: every one sends process 0 the texts report.html
  # embeds (linjax/cli/report_texts.py); one process: t as it is.
  from linjax.cli import report_texts  # pylint: disable=g-import-not-at-top
  t = report_texts.for_writer(t, test_scores, threshold)
  if not scoring.is_writer:   # process 0 writes and prints
    return results

  stage.phase = 'saving the model'
  from linjax.analysis import report_templates  # pylint: disable=g-import-not-at-top
  from linjax.cli import report as report_cli  # pylint: disable=g-import-not-at-top
  with timeline.phase('top features'):
    # Each class's top features and their names in one pass, for the
    # summary, results.json and report.html, before the model keeps them.
    templates = report_cli.run_templates(t)
    top = report_templates.as_top_features(templates, k=10)
    results['top_features'] = saved_model.jsonable(top)
  summary = {k: results[k] for k in (
      'test_accuracy', 'test_macro_f1', 'val_accuracy', 'train_seconds',
      'num_classes', 'num_features', 'epochs_run')}
  if threshold is not None:
    summary['threshold'] = threshold   # what predict and evaluate apply
  model_dir = t.run.join(workdir_lib.MODEL)
  with timeline.phase('report'):   # built on a thread while the model is saved
    report_job = report_cli.RunReportJob(t, test_scores, threshold, templates)
  with timeline.phase('save'):
    saved_model.save(model_dir, t.params, t.featurizer, t.label_map,
                     config, extra=summary, loss=t.options.training.loss)
    results['model_bytes'] = workdir_lib.disk_size(model_dir)
    if scoring.write_test_split is not None:
      results['test_split'] = t.run.join(workdir_lib.TEST_SPLIT)
      scoring.write_test_split(results['test_split'])
  with timeline.phase('report wait'):
    results.update(report_job.result())
  timeline.add('report (background)', *report_job.span)
  if results.get('report'):   # its own time, whatever overlapped it
    results['report_seconds'] = timeline.seconds('report (background)')
  results['plots'] = []
  if t.plots:
    with timeline.phase('plots'):
      results['plots'] = write_plots(t.workdir, t.fit.history, report, top,
                                     names)
  results['gradcheck'] = _gradcheck_record(t, scoring, stage, timeline)
  freed = 0
  if t.options.training.checkpoint_every and config.train.remove_checkpoints:
    freed = checkpoint.remove(t.run.join(workdir_lib.CHECKPOINTS))
  # Written last: the time after the timeline's end is results.json, the
  # summary and the process's exit.
  results['timeline'] = timeline.as_json()
  workdir_lib.write_atomic(t.run.join(workdir_lib.RESULTS),
                           json.dumps(results, indent=1))
  print_summary(results, top, t.workdir, model_dir, freed, threshold,
                scoring.streamed)
  if results.get('report'):
    print(f'report: {results["report"]} (open it in a browser: errors, '
          'token contributions, class templates, calibration)')
  return results


def print_summary(results: dict, top, workdir: str, model_dir: str,
                  freed: int, threshold: float | None,
                  streamed: bool = False) -> None:
  """The run's last lines on stdout: test and validation metrics, timings,
  the top features per class and where the results went."""
  from linjax.analysis import interpret  # pylint: disable=g-import-not-at-top
  refit = results.get('refit')
  timing = (f'({results["epochs_run"]} epochs' +
            (f' + a refit of {refit["epochs"]} on train + validation'
             if refit else '') +
            f', train {results["train_seconds"]:.2f} s, featurise '
            f'{results["featurize_seconds"]:.2f} s')
  plots = (f'plots: {", ".join(results["plots"])}' if results.get('plots')
           else f'PNG plots on demand: linjax plots --workdir={workdir}')
  if streamed:   # the out-of-core runner's shorter summary
    nan = float('nan')
    print(f'test accuracy {results["test_accuracy"] or nan:.4f}  '
          f'macro-F1 {results["test_macro_f1"] or nan:.4f}  val '
          f'accuracy {results["val_accuracy"] or nan:.4f}  '
          f'{timing}, out of core)')
    print(f'wrote {workdir}/results.json and {model_dir}')
    print(plots)
    return
  if threshold is not None:
    print(f'test micro-F1 {fmt(results.get("test_micro_f1"))}  macro-F1 '
          f'{fmt(results["test_macro_f1"])} at threshold {threshold:.2f}  '
          f'P@1 {fmt(results["test_accuracy"])}  val P@1 '
          f'{fmt(results["val_accuracy"])}  {timing})')
  else:
    print(f'test accuracy {fmt(results["test_accuracy"])}  macro-F1 '
          f'{fmt(results["test_macro_f1"])}  val accuracy '
          f'{fmt(results["val_accuracy"])}  {timing})')
  print('top features per class:')
  print(interpret.format_top_features(top[:SUMMARY_CLASSES], k=5))
  if len(top) > SUMMARY_CLASSES:
    print(f'  ... and {len(top) - SUMMARY_CLASSES} more classes (all in '
          f'{workdir}/results.json, top_features)')
  print(f'wrote {workdir}/results.json and {model_dir} '
        f'({workdir_lib.format_bytes(results["model_bytes"])} on disk)' +
        (f'; removed the checkpoints ({workdir_lib.format_bytes(freed)})'
         if freed else ''))
  print(plots)
