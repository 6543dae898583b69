r"""Predicts labels of raw texts, one document per input line.

  python -m experiments.predict --model=DIR/model --input=texts.txt
  echo "some text" | python -m experiments.predict --model=DIR/model --input=-

Each input line gives one output line: ``label<TAB>probability`` (with
``--top_k=K``, K label/probability pairs, most probable first), or with
``--jsonl`` a JSON object {"label", "probability", "top_k": [{"label",
"probability"}, ...]}. Empty lines are predicted too, so output line i always
belongs to input line i.
"""

from __future__ import annotations

import json
import sys

from absl import app
from absl import flags
import numpy as np

from experiments import train as train_runner
from experiments import config_check

FLAGS = flags.FLAGS

flags.DEFINE_string('model', None, 'A saved model directory (workdir/model).')
flags.DEFINE_string('input', '-', 'A UTF-8 text file, one document per line; '
                    '"-" reads stdin.')
flags.DEFINE_integer('top_k', 1, 'Labels shown per document.', lower_bound=1)
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


def predict_lines(model, texts: list[str], top_k: int = 1,
                  batch_size: int = 4096):
  """Yields, per text, the top_k (label, probability) pairs, best first."""
  k = min(top_k, model.label_map.num_classes)
  for start in range(0, len(texts), batch_size):
    proba = model.predict_proba(texts[start:start + batch_size])
    order = np.argsort(-proba, axis=1, kind='stable')[:, :k]
    for row, idx in zip(proba, order):
      yield [(model.label_map.names[i], float(row[i])) for i in idx]


def main(argv):
  with config_check.runner_main(argv, model=FLAGS.model):
    from linjax import saved_model  # pylint: disable=g-import-not-at-top
    model = saved_model.load(FLAGS.model)
    texts = _read_lines(FLAGS.input)
    out = sys.stdout
    for top in predict_lines(model, texts, FLAGS.top_k, FLAGS.batch_size):
      if FLAGS.jsonl:
        out.write(json.dumps(dict(
            label=top[0][0], probability=top[0][1],
            top_k=[dict(label=l, probability=p) for l, p in top]),
                             ensure_ascii=False) + '\n')
      else:
        out.write('\t'.join(f'{l}\t{p:.6f}' for l, p in top) + '\n')
    out.flush()


if __name__ == '__main__':
  app.run(main, flags_parser=train_runner.parse_flags)
