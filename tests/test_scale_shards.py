"""linjax.data.shards: every line read by exactly one process, errors at the
whole file's line numbers."""

import json
import logging
import os
import pathlib
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from linjax.data import readers
from linjax.data import shards
from linjax.data.readers import DataError

WORDS = ['alpha', 'béta', 'γάμμα', '日本', 'x' * 300, 'tab', 'naïve', 'z']


def _docs(n, seed):
  rng = np.random.default_rng(seed)
  docs = []
  for i in range(n):
    words = rng.choice(WORDS, rng.integers(1, 12)).tolist()
    docs.append((f'c{i % 3}', ' '.join(words)))
  return docs


def _write(lines, suffix, crlf_every=0, blank_every=0):
  path = os.path.join(tempfile.mkdtemp(), 'corpus' + suffix)
  out = []
  for i, line in enumerate(lines):
    out.append(line + ('\r\n' if crlf_every and i % crlf_every == 1 else '\n'))
    if blank_every and i % blank_every == blank_every - 1:
      out.append('\n')
  with open(path, 'w', encoding='utf-8', newline='') as f:
    f.write(''.join(out))
  return path


def _tsv(docs, **kw):
  return _write(['label\ttext'] + [f'{l}\t{t}' for l, t in docs], '.tsv', **kw)


def _jsonl(docs, **kw):
  return _write([json.dumps(dict(label=l, text=t), ensure_ascii=False)
                 for l, t in docs], '.jsonl', **kw)


def _fasttext(docs, **kw):
  return _write([f'__label__{l} {t}' for l, t in docs], '.txt', **kw)


WRITERS = dict(tsv=_tsv, jsonl=_jsonl, fasttext=_fasttext)


def _concat(parts):
  return tuple(sum((getattr(p, f) for p in parts), [])
               for f in ('texts', 'labels', 'sources'))


class ByteShardTest(parameterized.TestCase):

  @parameterized.parameters('tsv', 'jsonl', 'fasttext')
  def test_parts_in_order_are_the_whole_file(self, fmt):
    path = WRITERS[fmt](_docs(57, seed=len(fmt)), crlf_every=5,
                        blank_every=9)
    whole = readers.read(pathlib.Path(path), fmt)
    size = os.path.getsize(path)
    for count in (1, 2, 3, 5, 8, 64):
      ranges = [shards.byte_range(path, i, count) for i in range(count)]
      # The ranges tile the file, each starting at a line start.
      self.assertEqual(ranges[0].start, 0)
      self.assertEqual(ranges[-1].end, size)
      with open(path, 'rb') as f:
        data = f.read()
      for a, b in zip(ranges, ranges[1:]):
        self.assertEqual(a.end, b.start)
        self.assertTrue(b.start in (0, size) or data[b.start - 1:b.start] ==
                        b'\n')
      parts = [shards.read_shard(path, fmt, i, count) for i in range(count)]
      self.assertEqual(_concat(parts), tuple(whole), count)

  def test_first_line_from_the_processes_line_counts(self):
    path = _tsv(_docs(40, seed=1), blank_every=7)
    count = 4
    ranges = [shards.byte_range(path, i, count) for i in range(count)]
    lines = [shards.count_lines(path, *r) for r in ranges]
    firsts = 1 + np.concatenate([[0], np.cumsum(lines)[:-1]])
    for i in range(count):
      self.assertEqual(
          shards.read_shard(path, 'tsv', i, count, first_line=int(firsts[i])),
          shards.read_shard(path, 'tsv', i, count))

  @parameterized.parameters(
      ('tsv', 'c1\tno tab here\textra'), ('tsv', 'only one field'),
      ('jsonl', '{"label": "c1", "text": '), ('jsonl', '{"text": "a"}'),
      ('fasttext', 'no label prefix'), ('tsv', 'c1\t   '))
  def test_an_error_names_the_whole_files_line(self, fmt, bad):
    docs = _docs(30, seed=2)
    path = WRITERS[fmt](docs, crlf_every=4)
    with open(path, encoding='utf-8', newline='') as f:
      lines = f.read().split('\n')
    first_doc_line = 2 if fmt == 'tsv' else 1
    for at in (first_doc_line, 17, len(lines) - 1):
      corrupted = list(lines)
      corrupted[at - 1] = bad
      with open(path, 'w', encoding='utf-8', newline='') as f:
        f.write('\n'.join(corrupted))
      with self.assertRaises(DataError) as whole:
        readers.read(pathlib.Path(path), fmt)
      self.assertEqual(whole.exception.line, at)
      for count in (2, 3, 6):
        raised = []
        for i in range(count):
          try:
            shards.read_shard(path, fmt, i, count)
          except DataError as e:  # pylint: disable=broad-except
            raised.append(e)
        self.assertLen(raised, 1)  # only the part holding the line
        self.assertEqual(raised[0].line, at)
        self.assertEqual(str(raised[0]), str(whole.exception))

  def test_lenient_sources_and_warnings_keep_line_numbers(self):
    docs = _docs(30, seed=3)
    path = _tsv(docs)
    with open(path, encoding='utf-8') as f:
      lines = f.read().split('\n')
    lines[20] = 'broken line'          # line 21
    with open(path, 'w', encoding='utf-8') as f:
      f.write('\n'.join(lines))
    whole = readers.read(pathlib.Path(path), 'tsv', lenient=True)
    with self.assertLogs(readers.__name__, logging.WARNING) as logs:
      parts = [shards.read_shard(path, 'tsv', i, 3, lenient=True)
               for i in range(3)]
    self.assertEqual(_concat(parts), tuple(whole))
    self.assertTrue(any('line 21:' in m for m in logs.output), logs.output)

  def test_csv_is_split_by_files(self):
    path = _write(['label,text', 'a,b'], '.csv')
    with self.assertRaisesRegex(DataError, 'cannot be split by bytes.*glob'):
      shards.read_shard(path, 'csv', 0, 2)

  def test_a_part_without_lines_is_empty(self):
    path = _tsv(_docs(2, seed=4))
    parts = [shards.read_shard(path, 'tsv', i, 50) for i in range(50)]
    self.assertEqual(sum(len(p.texts) for p in parts), 2)
    self.assertEqual(_concat(parts), tuple(readers.read(pathlib.Path(path),
                                                        'tsv')))


class FileShardTest(absltest.TestCase):

  def test_files_split_into_contiguous_runs(self):
    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(5)
    names = []
    for i in range(11):
      name = os.path.join(folder, f'part-{i:02d}.tsv')
      docs = _docs(int(rng.integers(1, 30)), seed=i)
      with open(name, 'w', encoding='utf-8') as f:
        f.write('label\ttext\n' + ''.join(f'{l}\t{t}\n' for l, t in docs))
      names.append(pathlib.Path(name))
    pattern = os.path.join(folder, 'part-*.tsv')
    for count in (1, 2, 3, 4, 11, 15):
      runs = [shards.shard_files(pattern, i, count) for i in range(count)]
      self.assertEqual(sum(runs, []), names)   # each file once, in order
      parts = [shards.read_shard(pattern, '', i, count) for i in range(count)]
      whole = [readers.read(n, 'tsv') for n in names]
      self.assertEqual(_concat(parts), _concat(whole))
    sizes = [[n.stat().st_size for n in run] for run in
             (shards.shard_files(pattern, i, 3) for i in range(3))]
    total = sum(map(sum, sizes))
    for run in sizes:   # balanced within one file's size
      self.assertLess(abs(sum(run) - total / 3), max(map(max, sizes)))

  def test_no_match_names_the_pattern(self):
    with self.assertRaisesRegex(DataError, 'nothing-\\*.tsv: no file'):
      shards.read_shard('/tmp/nothing-*.tsv', 'tsv', 0, 2)


if __name__ == '__main__':
  absltest.main()
