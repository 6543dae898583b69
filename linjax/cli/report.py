r"""Writes the error-analysis page of a saved model on a labelled corpus.

  linjax report --model=DIR/model --data=test.tsv [--out=report.html]
  python -m experiments.report --model=DIR/model --data=test.tsv

``report.html`` is one self-contained file (data, CSS and script inline; it
opens from ``file://`` and makes no request): the metrics and the training
curves, the per-class table, the confusion matrix (a click lists those
documents), the documents with each token coloured by its exact
contribution, the class templates and the calibration
(linjax/analysis/report_data.py, report_page.py). A training run writes
one into its workdir by itself (`write_report`, called by
linjax/cli/finish_run.py). A multi-label model (``train.loss=sigmoid``)
reads ``--data`` as multi-label with the run's settings and applies its
saved threshold (or ``--threshold``).
"""

from __future__ import annotations

import json
import os
import threading
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS

DEFAULT_MAX_DOCS = 2000
REPORT = 'report.html'


def define_flags() -> None:
  flags.DEFINE_string('model', None, 'A saved model directory (workdir/model).')
  flags.DEFINE_string('data', None, 'Labelled corpus: TSV, CSV, JSONL, '
                      'fastText or a folder (as data.train in the config).')
  flags.DEFINE_string('out', REPORT, 'The page to write.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --out page.')
  flags.DEFINE_string('format', '', 'Corpus format; empty: from the '
                      'extension.')
  flags.DEFINE_string('text_column', '', 'CSV/JSONL/TSV text column; empty: '
                      'as in training.')
  flags.DEFINE_string('label_column', '', 'Label column; empty: as in '
                      'training.')
  flags.DEFINE_bool('lenient', False, 'Skip bad lines instead of failing.')
  flags.DEFINE_float('threshold', None, 'Multi-label models: a label is '
                     'predicted at probability >= this (default: the '
                     'model\'s saved threshold).', lower_bound=0.0,
                     upper_bound=1.0)
  flags.DEFINE_integer('max_docs', DEFAULT_MAX_DOCS, 'Documents embedded in '
                       'the page at most: the misclassified first, then a '
                       'stratified sample of the others.', lower_bound=0)


def write_report(path: str, *, texts, y_true, proba, params, featurizer,
                 label_names, threshold=None, history=(), info=None,
                 config=None, max_docs: int = DEFAULT_MAX_DOCS,
                 flag: str = '--out', templates=None,
                 probabilities: bool = True) -> dict:
  """Builds the page of one labelled split and writes it atomically.

  Args:
    path: the file to write.
    texts: the N documents as read; y_true: int [N] or multi-hot [N, C];
      proba: float [N, C] the model's probabilities of them.
    params: the model's Params (W [F, C], b [C]); featurizer: fitted.
    label_names: the C names; threshold: a multi-label model's threshold
      (None: single-label).
    history: the per-epoch records; info: facts for the summary; config:
      the run's settings (nested dict).
    max_docs: documents embedded at most.
    flag: the flag a write error names.
    templates: the class templates if computed already (`run_templates`).
    probabilities: False when ``proba`` are a margin loss's scores.

  Returns:
    dict(path, bytes, seconds, docs): what was written and how long the
    page took to build and write.
  """
  from linjax.analysis import report_data  # pylint: disable=g-import-not-at-top
  from linjax.analysis import report_page  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  payload = report_data.build_payload(
      texts=texts, y_true=y_true, proba=proba, W=np.asarray(params.W),
      b=np.asarray(params.b), featurizer=featurizer, label_names=label_names,
      threshold=threshold, history=history, info=info, config=config,
      options=report_data.ReportOptions(max_docs=max_docs),
      templates=templates, probabilities=probabilities)
  corpus = (info or {}).get('corpus')
  page = report_page.render(payload, title='linjax report' + (
      f': {os.path.basename(str(corpus))}' if corpus else ''))
  workdir_lib.write_atomic(path, page, flag=flag)
  return dict(path=path, bytes=len(page.encode('utf-8', 'replace')),
              seconds=time.perf_counter() - start,
              docs=len(payload['docs']['text']))


def max_docs_of(config) -> int:
  """A run's ``report.max_docs`` (default `DEFAULT_MAX_DOCS`; 0: no page)."""
  section = config.get('report') if hasattr(config, 'get') else None
  if section is None:
    return DEFAULT_MAX_DOCS
  return int(section.get('max_docs', DEFAULT_MAX_DOCS))


def check_config(config) -> None:
  """ConfigError naming ``report.max_docs`` unless it is an int >= 0 (for
  the runner to call before any work)."""
  section = config.get('report') if hasattr(config, 'get') else None
  value = None if section is None else section.get('max_docs')
  if value is not None and (isinstance(value, bool) or
                            not isinstance(value, int) or value < 0):
    raise config_check.ConfigError(
        f'report.max_docs must be an int >= 0 (0: no report.html), got '
        f'{value!r}')


def run_templates(t) -> list:
  """The class templates of a trained run (`finish_run.Trained` ``t``):
  each class's top positive and negative features with their names, asked
  in one pass before the model is saved (so that it keeps them); the run's
  summary and results.json take their top features from them too."""
  from linjax.analysis import report_templates  # pylint: disable=g-import-not-at-top
  from linjax.analysis import report_data  # pylint: disable=g-import-not-at-top
  return report_templates.class_templates(
      np.asarray(t.params.W), np.asarray(t.params.b), t.featurizer,
      t.label_map.names, report_data.ReportOptions().top_features)


def write_run_report(t, test_scores, threshold, templates=None) -> dict:
  """Writes a training run's report.html into its workdir.

  Args:
    t: the run (`finish_run.Trained`: its params, featuriser, labels, test
      texts, history, config and workdir).
    test_scores: (y [N] or multi-hot [N, C], proba [N, C]) of the test
      split, as the run scored it; None: no test split.
    threshold: the multi-label threshold (None: single-label).
    templates: `run_templates(t)`, or None to compute them here.

  Returns:
    results.json's keys: ``report`` (the path), ``report_seconds``,
    ``report_bytes`` and ``report_docs``; empty when there is no page to
    write (no test split, no test texts on this process, or
    ``report.max_docs=0``); ``report`` None and ``report_error`` when
    building it failed (a warning says why; the run's other outputs stay).
  """
  max_docs = max_docs_of(t.config)
  if test_scores is None or t.test_texts is None or not max_docs:
    return {}
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  get_loss = getattr(losses, 'get_loss', None)
  # A margin loss (hinge): the run's test "proba" are its scores.
  probabilities = get_loss is None or bool(getattr(
      get_loss(t.options.training.loss), 'has_probabilities', True))
  y, proba = test_scores
  if len(t.test_texts) != np.shape(proba)[0]:   # a part of a larger split
    return {}
  config = t.config.to_dict() if hasattr(t.config, 'to_dict') else t.config
  data = config.get('data', {})
  info = dict(corpus=data.get('train') or 'the demo corpus',
              test=data.get('test') or 'held out from the training data',
              num_train=t.num_train, num_val=t.num_val, num_test=t.num_test,
              train_seconds=t.fit.train_seconds, workdir=t.workdir)
  try:
    written = write_report(
        t.run.join(REPORT), texts=t.test_texts, y_true=y, proba=proba,
        params=t.params, featurizer=t.featurizer,
        label_names=t.label_map.names, threshold=threshold,
        history=t.fit.history, info=info, config=config, max_docs=max_docs,
        flag='--workdir', templates=templates, probabilities=probabilities)
  except Exception as e:  # pylint: disable=broad-except
    # The trained model and its results matter more than the page.
    logging.warning('report.html not written: %s', config_check.one_line(e),
                    exc_info=not isinstance(e, OSError))
    return dict(report=None, report_error=config_check.one_line(e))
  return dict(report=written['path'], report_seconds=written['seconds'],
              report_bytes=written['bytes'], report_docs=written['docs'])


def is_multi_label(model) -> bool:
  """Whether a saved model gives label sets (its loss's ``multi_label``)."""
  return bool(getattr(model, 'multi_label', model.loss == 'sigmoid'))


def has_probabilities(model) -> bool:
  """Whether a saved model's loss maps scores to probabilities (not: a
  margin loss such as hinge, whose report ranks by score margins)."""
  entry = getattr(model, 'loss_entry', None)
  return bool(getattr(entry, 'has_probabilities', True))


def scores_of(model, texts) -> np.ndarray:
  """float [N, C]: the model's probabilities of ``texts``, or its scores
  for a loss without probabilities."""
  if has_probabilities(model):
    return np.asarray(model.predict_proba(texts))
  return np.asarray(model.decision_function(texts))


class RunReportJob:
  """`write_run_report` on a background thread, started at once.

  A run builds its page while it saves the model (most of the page's work
  is numpy, which releases the GIL, and saving is mostly I/O), so the
  report costs the run's wall time only what it does not overlap.
  `result()` waits for it; ``span`` is its (start, end) in seconds since
  the process started (linjax/cli/run_timeline.py).
  """

  def __init__(self, t, test_scores, threshold, templates=None):
    self.span = None
    self._written = {}
    self._thread = threading.Thread(
        target=self._run, args=(t, test_scores, threshold, templates),
        name='linjax-report', daemon=True)
    self._thread.start()

  def _run(self, *args) -> None:
    from linjax.cli import run_timeline  # pylint: disable=g-import-not-at-top
    start = run_timeline.now()
    try:
      self._written = write_run_report(*args)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('report.html not written: %s',
                      config_check.one_line(e), exc_info=True)
      self._written = dict(report=None,
                           report_error=config_check.one_line(e))
    finally:
      self.span = (start, run_timeline.now())

  def result(self) -> dict:
    """`write_run_report`'s dict, once the page is written."""
    self._thread.join()
    return self._written


def _read_corpus(data_path: str, model, format: str = '',  # pylint: disable=redefined-builtin
                 text_column: str = '', label_column: str = '',
                 lenient: bool = False):
  """The labelled corpus at ``data_path``, read with the model's settings
  (`labelled_input.read_for_model`, as `linjax evaluate` reads it)."""
  from linjax.cli import labelled_input  # pylint: disable=g-import-not-at-top
  return labelled_input.read_for_model(data_path, model, format, text_column,
                                       label_column, lenient)


def _run_record(model_dir: str) -> tuple[list, dict]:
  """The training history and results of the run that saved the model
  (its workdir's metrics.jsonl and results.json), when they are there."""
  workdir = os.path.dirname(os.path.abspath(model_dir))
  history, results = [], {}
  try:
    with open(os.path.join(workdir, workdir_lib.METRICS),
              encoding='utf-8') as f:
      history = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(workdir, workdir_lib.RESULTS),
              encoding='utf-8') as f:
      results = json.load(f)
  except (OSError, ValueError):
    pass   # a model copied out of its run: no curves
  return [h for h in history if isinstance(h, dict)], results


def model_payload(model, model_dir: str, data_path: str | None,
                  threshold: float | None = None,
                  max_docs: int = DEFAULT_MAX_DOCS,
                  read_options: dict | None = None) -> dict:
  """The report payload of a loaded model on ``data_path`` (read with
  ``read_options``: format, text_column, label_column, lenient); without
  data, only its templates, settings and training curves (the what-if
  page)."""
  from linjax.analysis import report_data  # pylint: disable=g-import-not-at-top
  from linjax.analysis import report_whatif  # pylint: disable=g-import-not-at-top
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  history, results = _run_record(model_dir)
  names = model.label_map.names
  multilabel = is_multi_label(model)
  probabilities = has_probabilities(model)
  if multilabel and threshold is None:
    threshold = multilabel_run.saved_threshold(model)
  info = dict(model=str(model_dir))
  for key in ('num_train', 'num_val', 'train_seconds'):
    if results.get(key) is not None:
      info[key] = results[key]
  W, b = np.asarray(model.params.W), np.asarray(model.params.b)
  if data_path is None:
    return report_whatif.model_payload(
        W=W, b=b, featurizer=model.featurizer, label_names=names,
        threshold=threshold if multilabel else None, history=history,
        info=info, config=model.config)
  with console.phase(f'reading {data_path}'):
    corpus, _ = _read_corpus(data_path, model, **(read_options or {}))
  if multilabel:
    unknown = model.label_map.unknown_labels(corpus.labels)
    if unknown:
      logging.warning('%d label(s) of --data the model never saw are '
                      'ignored: %s', len(unknown), console.bounded_list(
                          list(map(repr, unknown))))
    y = model.label_map.encode_multi(corpus.labels, unknown='ignore')
  else:
    y = model.label_map.encode(corpus.labels, corpus.sources)
  progress = console.Progress('predicting', len(corpus.texts), 'documents')
  parts = []
  for start in range(0, len(corpus.texts), 16384):
    parts.append(scores_of(model, corpus.texts[start:start + 16384]))
    progress.update(start + len(parts[-1]))
  info.update(corpus=str(data_path), num_test=len(corpus.texts))
  return report_data.build_payload(
      texts=corpus.texts, y_true=y, proba=np.concatenate(parts), W=W, b=b,
      featurizer=model.featurizer, label_names=names,
      threshold=threshold if multilabel else None, history=history,
      info=info, config=model.config,
      options=report_data.ReportOptions(max_docs=max_docs),
      probabilities=probabilities)


def report_for_model(model_dir: str, data_path: str, out: str,
                     threshold: float | None = None,
                     max_docs: int = DEFAULT_MAX_DOCS,
                     read_options: dict | None = None) -> dict:
  """Writes the report of the saved model at ``model_dir`` on
  ``data_path`` to ``out``; returns dict(path, bytes, seconds, docs)."""
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.analysis import report_page  # pylint: disable=g-import-not-at-top
  model = saved_model.load(model_dir)
  start = time.perf_counter()
  payload = model_payload(model, model_dir, data_path, threshold, max_docs,
                          read_options)
  with console.phase(f'writing {out}'):
    page = report_page.render(payload, title='linjax report: '
                              + os.path.basename(str(data_path)))
    workdir_lib.write_atomic(out, page, flag='--out')
  return dict(path=out, bytes=len(page.encode('utf-8')),
              seconds=time.perf_counter() - start,
              docs=len(payload['docs']['text']))


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, model=FLAGS.model, data=FLAGS.data):
    workdir_lib.check_new_output(FLAGS.out, '--out', FLAGS.overwrite)
    workdir_lib.check_model_dir(FLAGS.model)
    written = report_for_model(
        FLAGS.model, FLAGS.data, FLAGS.out, FLAGS.threshold, FLAGS.max_docs,
        dict(format=FLAGS.format, text_column=FLAGS.text_column,
             label_column=FLAGS.label_column, lenient=FLAGS.lenient))
    size = workdir_lib.format_bytes(written['bytes'])
    print(f'wrote {written["path"]} ({size}'
          f', {written["docs"]} documents, {written["seconds"]:.2f} s); '
          'open it in a browser')


def command() -> None:
  """``linjax report``: defines the flags, parses them and runs `main`."""
  from linjax.cli import runner_flags  # pylint: disable=g-import-not-at-top
  define_flags()
  app.run(main, flags_parser=runner_flags.parse_flags)


if __name__ == '__main__':
  command()
