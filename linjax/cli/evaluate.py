r"""Evaluates a saved model on a labelled corpus.

  linjax evaluate --model=DIR/model --data=test.tsv \
      [--format=tsv] [--out=report.json]

Prints accuracy, macro-F1, log loss, calibration error, the per-class report
and the confusion matrix; ``--out`` also writes them as JSON (atomically;
checked writable before any work). A training run that carved its test
split from ``data.train`` saved it as ``DIR/test_split.jsonl`` for this.

A multi-label model (``train.loss=sigmoid``) reads ``--data`` as multi-label
(with the run's ``data.label_separator``/``allow_unlabeled``) and prints
micro and macro F1 at ``--threshold`` (default: the one saved with the
model), P@k and R@k as fastText's ``test`` reports them, and per-label
precision and recall (linjax/analysis/multilabel_metrics.py); labels the
model never saw are ignored, with a warning. Data with none of the model's
labels stop with one line in either mode (every metric would be 0).
``--out`` and ``--confusion_png`` never replace a file without
``--overwrite``.
"""

from __future__ import annotations

import json

from absl import app
from absl import flags
from absl import logging
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import label_checks
from linjax.cli import labelled_input
from linjax.cli import train as train_runner
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS

flags.DEFINE_string('model', None, 'A saved model directory (workdir/model).')
flags.DEFINE_string('data', None, 'Labelled corpus: TSV, CSV, JSONL, fastText '
                    'or a folder (see data.train in the config).')
flags.DEFINE_string('format', '', 'Corpus format; empty: from the extension.')
flags.DEFINE_string('text_column', '', 'CSV/JSONL/TSV text column; empty: as '
                    'in training.')
flags.DEFINE_string('label_column', '', 'Label column; empty: as in training.')
flags.DEFINE_bool('lenient', False, 'Skip bad lines instead of failing.')
flags.DEFINE_string('out', '', 'Write the report as JSON to this file.')
flags.DEFINE_string('confusion_png', '', 'Also plot the confusion matrix.')
flags.DEFINE_bool('overwrite', False, 'Replace existing --out and '
                  '--confusion_png files.')
flags.DEFINE_float('threshold', None, 'Multi-label models: a label is '
                   'predicted at probability >= this (default: the '
                   'model\'s saved threshold).', lower_bound=0.0,
                   upper_bound=1.0)


def _evaluate_multilabel(model, corpus, threshold) -> dict:
  """`multilabel_metrics.multilabel_report` of a sigmoid model."""
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  from linjax.analysis import multilabel_metrics  # pylint: disable=g-import-not-at-top
  unknown = model.label_map.unknown_labels(corpus.labels)
  if unknown:
    logging.warning('%d label(s) of --data the model never saw are ignored: '
                    '%s', len(unknown), ', '.join(map(repr, list(unknown)[:10])))
  Y = model.label_map.encode_multi(corpus.labels, unknown='ignore')
  progress = console.Progress('evaluating', len(corpus.texts), 'documents')
  chunk, parts = 16384, []
  for start in range(0, len(corpus.texts), chunk):
    parts.append(model.predict_proba(corpus.texts[start:start + chunk]))
    progress.update(start + len(parts[-1]))
  if threshold is None:
    threshold = multilabel_run.saved_threshold(model)
  return multilabel_metrics.multilabel_report(
      Y, np.concatenate(parts), threshold, multilabel_run.REPORT_KS,
      model.label_map.names)


def evaluate(model_dir: str, data_path: str, format: str = '',  # pylint: disable=redefined-builtin
             text_column: str = '', label_column: str = '',
             lenient: bool = False, threshold: float | None = None) -> dict:
  """Metrics of the saved model at ``model_dir`` on the corpus ``data_path``.

  Returns:
    `linjax.metrics.classification_report` plus ``model`` and ``data``; for
    a multi-label model `multilabel_metrics.multilabel_report` at
    ``threshold`` (None: the model's saved one) plus ``model``, ``data``
    and ``loss``.

  Raises:
    PathError (not a saved model folder), ModelFileError, DataError (a label
    the model never saw, bad lines).
  """
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  model = workdir_lib.load_model(model_dir)
  with console.phase(f'reading {data_path}'):
    corpus, multilabel = labelled_input.read_for_model(
        data_path, model, format, text_column, label_column, lenient)
  label_checks.check_known_labels(   # not a page of zeros
      [l for labels in corpus.labels for l in (
          labels if isinstance(labels, tuple) else (labels,))],
      model.label_map.names, '--data', data_path)
  if multilabel:
    report = _evaluate_multilabel(model, corpus, threshold)
    report.update(model=str(model_dir), data=str(data_path), loss=model.loss,
                  multi_label=True)
    return report
  y = model.label_map.encode(corpus.labels, corpus.sources)
  progress = console.Progress('evaluating', len(corpus.texts), 'documents')
  chunk, parts = 16384, []
  for start in range(0, len(corpus.texts), chunk):
    x = model.featurizer.transform(corpus.texts[start:start + chunk])
    if model.loss_entry.has_probabilities:
      parts.append(np.asarray(scoring.predict_proba(model.params, x,
                                                    loss=model.loss)))
    else:   # a margin loss: accuracy and F1 from the scores' argmax
      parts.append(np.asarray(scoring.predict_proba(model.params, x)))
    progress.update(start + x.num_docs)
  report = metrics.classification_report(y, np.concatenate(parts),
                                         model.label_map.names)
  if not model.loss_entry.has_probabilities:
    logging.warning('loss %r has no probabilities: log loss and calibration '
                    'are those of softmax(scores); accuracy and F1 are '
                    'exact.', model.loss)
  if report.get('absent_classes'):
    logging.warning('classes absent from --data: %s; macro-F1 averages over '
                    'the %d classes present.', ', '.join(
                        map(repr, report['absent_classes'])),
                    len(model.label_map.names) - len(report['absent_classes']))
  report.update(model=str(model_dir), data=str(data_path))
  return report


def format_confusion(cm, names) -> str:
  """The confusion matrix as text (rows true, columns predicted)."""
  width = max([6] + [len(str(v)) for row in cm for v in row]) + 1
  short = [n[:width - 1] for n in names]
  label_width = max(len(n) for n in names)
  lines = [' ' * (label_width + 1) + ''.join(f'{s:>{width}s}' for s in short)]
  for name, row in zip(names, cm):
    lines.append(f'{name:>{label_width}s} ' + ''.join(f'{v:>{width}d}'
                                                      for v in row))
  return '\n'.join(lines)


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, model=FLAGS.model, data=FLAGS.data):
    # Output paths are checked before any work; none is replaced without
    # --overwrite.
    for flag in ('out', 'confusion_png'):
      if FLAGS[flag].value:
        workdir_lib.check_new_output(FLAGS[flag].value, f'--{flag}',
                                     FLAGS.overwrite)
    report = evaluate(FLAGS.model, FLAGS.data, FLAGS.format,
                      FLAGS.text_column, FLAGS.label_column, FLAGS.lenient,
                      FLAGS.threshold)
    if report.get('multi_label'):
      from linjax.analysis import multilabel_metrics  # pylint: disable=g-import-not-at-top
      print(multilabel_metrics.format_multilabel_report(report))
      if FLAGS.out:
        workdir_lib.write_atomic(FLAGS.out, json.dumps(report, indent=1),
                                 flag='--out')
        print(f'wrote {FLAGS.out}')
      return
    from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
    names = [r['label'] for r in report['per_class']]
    print(f'{report["num_examples"]} documents: accuracy '
          f'{report["accuracy"]:.4f}  macro-F1 {report["macro_f1"]:.4f}')
    print(metrics.format_report(report))
    print('confusion matrix (rows: true, columns: predicted)')
    print(format_confusion(report['confusion_matrix'], names))
    if FLAGS.out:
      workdir_lib.write_atomic(FLAGS.out, json.dumps(report, indent=1),
                               flag='--out')
      print(f'wrote {FLAGS.out}')
    if FLAGS.confusion_png:
      from linjax.analysis import plots  # pylint: disable=g-import-not-at-top
      plots.confusion_matrix(report['confusion_matrix'], names,
                             FLAGS.confusion_png)


def command() -> None:
  """``linjax evaluate``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
