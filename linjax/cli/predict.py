r"""Predicts labels of raw texts, one document per input line.

  python -m experiments.predict --model=DIR/model --input=texts.txt
  echo "some text" | python -m experiments.predict --model=DIR/model --input=-

Each input line gives one output line: ``label<TAB>probability`` (with
``--top_k=K``, K label/probability pairs, most probable first), or with
``--jsonl`` a JSON object {"label", "probability", "top_k": [{"label",
"probability"}, ...]}. Empty lines are predicted too, so output line i always
belongs to input line i.

A multi-label model (trained with ``train.loss=sigmoid``) gives each
document every label whose own probability is ``>= --threshold`` (default:
the threshold the run tuned on its validation split, saved with the model),
most probable first, at most ``--top_k`` of them (default: all); a document
may get none (an empty line; in JSONL, label null). ``--threshold`` also
filters a single-label model's top_k (default 0: no filter), as fastText's
``predict -k K -t THRESHOLD`` does.
"""

from __future__ import annotations

import json
import sys

from absl import app
from absl import flags

from linjax.cli import train as train_runner
from linjax.cli import config_check

FLAGS = flags.FLAGS

flags.DEFINE_string('model', None, 'A saved model directory (workdir/model).')
flags.DEFINE_string('input', '-', 'A UTF-8 text file, one document per line; '
                    '"-" reads stdin.')
flags.DEFINE_integer('top_k', None, 'Labels shown per document at most '
                     '(default: 1; a multi-label model: all above the '
                     'threshold; 0: all).', lower_bound=0)
flags.DEFINE_float('threshold', None, 'Show only labels with a probability '
                   '>= this (default: 0; a multi-label model: its saved '
                   'threshold).', lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_bool('jsonl', False, 'Write one JSON object per line.')
flags.DEFINE_integer('batch_size', 4096, 'Documents featurised at a time.',
                     lower_bound=1)


def _read_lines(path: str) -> list[str]:
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  if path == '-':
    return sys.stdin.read().splitlines()
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except OSError as e:
    raise data.DataError(f'--input={path}: cannot read the file '
                         f'({e.strerror}).') from None
  try:
    return raw.decode('utf-8').splitlines()
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b'\n') + 1
    raise data.DataError('not valid UTF-8 (--input).', path=path,
                         line=line) from None


def predict_lines(model, texts: list[str], top_k: int | None = None,
                  batch_size: int = 4096, threshold: float | None = None):
  """Yields, per text, its (label, probability) pairs, best first: at most
  top_k of them (None: 1, or all for a multi-label model; 0: all), each
  with a probability >= threshold (None: 0, or a multi-label model's saved
  threshold)."""
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  multilabel = model.loss == 'sigmoid'
  if top_k is None:
    top_k = 0 if multilabel else 1
  if threshold is None:
    threshold = multilabel_run.saved_threshold(model) if multilabel else 0.0
  for start in range(0, len(texts), batch_size):
    proba = model.predict_proba(texts[start:start + batch_size])
    yield from multilabel_run.predicted_labels(
        proba, model.label_map.names, threshold, top_k)


def main(argv):
  with config_check.runner_main(argv, model=FLAGS.model):
    from linjax import saved_model  # pylint: disable=g-import-not-at-top
    model = saved_model.load(FLAGS.model)
    texts = _read_lines(FLAGS.input)
    out = sys.stdout
    for top in predict_lines(model, texts, FLAGS.top_k, FLAGS.batch_size,
                             FLAGS.threshold):
      if FLAGS.jsonl:
        first = top[0] if top else (None, None)
        out.write(json.dumps(dict(
            label=first[0], probability=first[1],
            top_k=[dict(label=l, probability=p) for l, p in top]),
                             ensure_ascii=False) + '\n')
      else:
        out.write('\t'.join(f'{l}\t{p:.6f}' for l, p in top) + '\n')
    out.flush()


def command() -> None:
  """``linjax predict``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
