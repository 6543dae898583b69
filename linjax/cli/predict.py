r"""Predicts labels of raw texts, one document per input line.

  linjax predict --model=run1/model --input=texts.txt
  echo "some text" | linjax predict --model=run1/model --input=-

Each input line gives one output line: ``label<TAB>probability`` (with
``--top_k=K``, K label/probability pairs, most probable first), or with
``--jsonl`` a JSON object {"label", "probability", "top_k": [{"label",
"probability"}, ...]}. Empty lines are predicted too, so output line i always
belongs to input line i.

A model whose loss has no probabilities (a margin loss such as hinge)
prints each label's score ``x W + b`` instead.

A multi-label model (trained with ``train.loss=sigmoid``) gives each
document every label whose own probability is ``>= --threshold`` (default:
the threshold the run tuned on its validation split, saved with the model),
most probable first, at most ``--top_k`` of them (default: all); a document
may get none (an empty line; in JSONL, label null). ``--threshold`` also
filters a single-label model's top_k (default 0: no filter), as fastText's
``predict -k K -t THRESHOLD`` does.

A labelled corpus given as ``--input`` (a TSV or CSV whose header has the
model's text column, JSONL objects with it, or fastText ``__label__``
lines) is recognised: its text column is predicted, one output line per
document, with a warning saying so (``linjax evaluate`` scores its labels;
``--format=lines`` predicts whole lines). Blank input lines get the class
prior; a warning counts them. ``--out`` writes the predictions to a file
(atomically; an existing file only with ``--overwrite``).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from absl import app
from absl import flags

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import train as train_runner
from linjax.cli import workdir as workdir_lib

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
# A model whose loss has no probabilities (hinge) prints its scores instead.
flags.DEFINE_bool('jsonl', False, 'Write one JSON object per line.')
flags.DEFINE_integer('batch_size', 4096, 'Documents featurised at a time.',
                     lower_bound=1)
flags.DEFINE_enum('format', '', ['', 'lines', 'tsv', 'csv', 'jsonl',
                                 'fasttext'],
                  'How --input is read: lines (one document per line), or '
                  'the text column of a labelled corpus; empty: lines, '
                  'unless the file is recognisably a labelled corpus.')
flags.DEFINE_string('out', '', 'Write the predictions to this file instead '
                    'of stdout.')
flags.DEFINE_bool('overwrite', False, 'Replace an existing --out file.')

_HEAD_LINES = 50   # lines looked at to recognise a labelled corpus


def detect_format(lines: list[str], path: str, text_column: str) -> str:
  """'lines', or the labelled-corpus format ``lines`` are written in: a TSV
  or CSV header with ``text_column``, JSONL objects with it, or fastText
  ``__label__`` lines (most of the first `_HEAD_LINES`)."""
  import csv  # pylint: disable=g-import-not-at-top
  from linjax.data import readers  # pylint: disable=g-import-not-at-top
  head = [l for l in lines[:_HEAD_LINES] if l.strip()]
  if not head:
    return 'lines'
  if text_column in head[0].rstrip('\r').split('\t') and '\t' in head[0]:
    return 'tsv'
  if path.lower().endswith('.csv'):
    try:
      if text_column in next(csv.reader([head[0]])):
        return 'csv'
    except (csv.Error, StopIteration):
      pass
  objects = 0
  for line in head:
    try:
      value = json.loads(line)
    except ValueError:
      break
    objects += isinstance(value, dict) and text_column in value
  if objects == len(head):
    return 'jsonl'
  prefixed = sum(l.startswith(readers.FASTTEXT_PREFIX) for l in head)
  if prefixed >= 0.9 * len(head):
    return 'fasttext'
  return 'lines'


def texts_of(lines: list[str], fmt: str, path: str, text_column: str):
  """(texts, input line number of each) of ``lines`` read as ``fmt``; a
  structured format skips its header and blank lines.

  Raises:
    DataError: a line without the text column, naming ``path`` and line.
  """
  import csv  # pylint: disable=g-import-not-at-top
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.data import readers  # pylint: disable=g-import-not-at-top
  if fmt == 'lines':
    return lines, list(range(1, len(lines) + 1))
  texts, numbers = [], []
  if fmt in ('tsv', 'csv'):
    rows = ([l.rstrip('\r').split('\t') for l in lines] if fmt == 'tsv'
            else list(csv.reader(lines)))
    at = rows[0].index(text_column)
    for number, row in enumerate(rows[1:], 2):
      if not any(field.strip() for field in row):
        continue
      if len(row) <= at:
        raise data.DataError(f'no {text_column!r} field (--input).',
                             path=path, line=number, fix=_WHOLE_LINES)
      texts.append(row[at])
      numbers.append(number)
    return texts, numbers
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    if fmt == 'jsonl':
      try:
        value = json.loads(line)
        texts.append(str(value[text_column]))
      except (ValueError, KeyError, TypeError):
        raise data.DataError(f'not a JSON object with {text_column!r} '
                             '(--input).', path=path, line=number,
                             fix=_WHOLE_LINES) from None
    else:   # fastText: the words after the __label__ prefixes
      words = line.split()
      while words and words[0].startswith(readers.FASTTEXT_PREFIX):
        words.pop(0)
      texts.append(' '.join(words))
    numbers.append(number)
  return texts, numbers


def read_input(path: str, fmt: str, text_column: str):
  """(texts, line numbers, the format used) of ``--input``, with one
  warning if a labelled corpus is recognised and one for blank lines."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  lines = _read_lines(path)
  used = fmt or detect_format(lines, path, text_column)
  texts, numbers = texts_of(lines, used, path, text_column)
  if used != 'lines' and not fmt:
    logging.warning(
        '--input=%s is a labelled corpus (%s): predicting its %s, %d '
        'documents, one output line each; its labels are not used (linjax '
        'evaluate --data=%s scores them; --format=lines predicts whole '
        'lines).', path, used, 'text' if used == 'fasttext' else
        f'{text_column!r} column', len(texts), path)
  blank = [n for n, t in zip(numbers, texts) if not t.strip()]
  if blank:
    logging.warning('%d blank document(s) (line%s %s) get the class prior; '
                    'their output lines are kept so that the output '
                    'matches the input line for line.', len(blank),
                    's' if len(blank) > 1 else '',
                    console.bounded_list(map(str, blank), 5))
  return texts, numbers, used


_WHOLE_LINES = ('give that line the field, or pass --format=lines to '
                'predict each whole line.')


def _read_lines(path: str) -> list[str]:
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  if path == '-':
    return sys.stdin.read().splitlines()
  if os.path.isdir(path):
    raise data.DataError(f'--input={path} is a folder; predict reads one text '
                         f'per line of a file (or - for stdin). A labelled '
                         f'folder of class sub-folders: linjax evaluate '
                         f'--data={path}')
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
  multilabel = model.multi_label
  if top_k is None:
    top_k = 0 if multilabel else 1
  if threshold is None:
    threshold = multilabel_run.saved_threshold(model) if multilabel else 0.0
  # A loss without probabilities (a margin loss such as hinge): its scores.
  score = (model.predict_proba if model.loss_entry.has_probabilities else
           model.decision_function)
  if not model.loss_entry.has_probabilities:
    threshold = -np.inf if threshold == 0.0 else threshold
  for start in range(0, len(texts), batch_size):
    yield from multilabel_run.predicted_labels(
        score(texts[start:start + batch_size]), model.label_map.names,
        threshold, top_k)


def _format_line(top, jsonl: bool) -> str:
  if jsonl:
    first = top[0] if top else (None, None)
    return json.dumps(dict(
        label=first[0], probability=first[1],
        top_k=[dict(label=l, probability=p) for l, p in top]),
                      ensure_ascii=False) + '\n'
  return '\t'.join(f'{l}\t{p:.6f}' for l, p in top) + '\n'


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, model=FLAGS.model):
    if FLAGS.out:   # before any work
      workdir_lib.check_new_output(FLAGS.out, '--out', FLAGS.overwrite)
    model = workdir_lib.load_model(FLAGS.model)
    text_column = model.config.get('data', {}).get('text_column') or 'text'
    texts, _, _ = read_input(FLAGS.input, FLAGS.format, text_column)
    lines = (_format_line(top, FLAGS.jsonl) for top in predict_lines(
        model, texts, FLAGS.top_k, FLAGS.batch_size, FLAGS.threshold))
    if FLAGS.out:
      workdir_lib.write_atomic(FLAGS.out, ''.join(lines), flag='--out')
      return
    out = sys.stdout
    for line in lines:
      out.write(line)
    out.flush()


def command() -> None:
  """``linjax predict``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
