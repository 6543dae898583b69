r"""Evaluates a saved model on a labelled corpus.

  python -m experiments.evaluate --model=DIR/model --data=test.tsv \
      [--format=tsv] [--out=report.json]

Prints accuracy, macro-F1, log loss, calibration error, the per-class report
and the confusion matrix; ``--out`` also writes them as JSON.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np

from experiments import train as train_runner
from experiments import config_check

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


def evaluate(model_dir: str, data_path: str, format: str = '',  # pylint: disable=redefined-builtin
             text_column: str = '', label_column: str = '',
             lenient: bool = False) -> dict:
  """Metrics of the saved model at ``model_dir`` on the corpus ``data_path``.

  Returns:
    `linjax.metrics.classification_report` plus ``model`` and ``data``.

  Raises:
    ModelFileError, DataError (a label the model never saw, bad lines).
  """
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  model = saved_model.load(model_dir)
  trained = model.config.get('data', {})
  corpus = data.read_corpus(
      data_path, format or '',
      text_column or trained.get('text_column', 'text'),
      label_column or trained.get('label_column', 'label'), lenient)
  y = model.label_map.encode(corpus.labels, corpus.sources)
  logging.info('%d documents from %s', len(corpus.texts), data_path)
  x = model.featurizer.transform(corpus.texts)
  proba = np.asarray(scoring.predict_proba(model.params, x))
  report = metrics.classification_report(y, proba, model.label_map.names)
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
  with config_check.runner_main(argv, model=FLAGS.model, data=FLAGS.data):
    report = evaluate(FLAGS.model, FLAGS.data, FLAGS.format,
                      FLAGS.text_column, FLAGS.label_column, FLAGS.lenient)
    from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
    names = [r['label'] for r in report['per_class']]
    print(f'{report["num_examples"]} documents: accuracy '
          f'{report["accuracy"]:.4f}  macro-F1 {report["macro_f1"]:.4f}')
    print(metrics.format_report(report))
    print('confusion matrix (rows: true, columns: predicted)')
    print(format_confusion(report['confusion_matrix'], names))
    if FLAGS.out:
      os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
      with open(FLAGS.out, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
      print(f'wrote {FLAGS.out}')
    if FLAGS.confusion_png:
      from linjax.analysis import plots  # pylint: disable=g-import-not-at-top
      plots.confusion_matrix(report['confusion_matrix'], names,
                             FLAGS.confusion_png)


if __name__ == '__main__':
  app.run(main, flags_parser=train_runner.parse_flags)
