"""`readers.LineSources`: the sources of a line-based file, made on demand,
behave as the list of 'path:line' strings they stand for."""

import pickle

from linjax.data import corpus
from linjax.data import readers
from linjax.data import shards


def test_reads_like_the_list_of_strings(tmp_path):
  path = tmp_path / 'c.tsv'
  path.write_text('label\ttext\na\tone\n\nb\ttwo\nc\tthree\n')
  got = corpus.read_corpus(str(path))
  want = [f'{path}:2', f'{path}:4', f'{path}:5']
  assert isinstance(got.sources, readers.LineSources)
  assert got.sources == want and want == got.sources
  assert list(got.sources) == want and len(got.sources) == 3
  assert got.sources[1] == want[1] and got.sources[-1] == want[-1]
  assert got.sources[1:] == want[1:] and got.sources[::2] == want[::2]
  assert got.sources + ['x'] == want + ['x']
  assert ['x'] + got.sources == ['x'] + want
  assert got.sources != want[:2] and got.sources != want[::-1]
  assert pickle.loads(pickle.dumps(got.sources)) == want


def test_a_byte_shard_names_the_whole_file_lines(tmp_path):
  path = tmp_path / 'c.tsv'
  lines = ['label\ttext'] + [f'{"ab"[i % 2]}\tdoc {i}' for i in range(40)]
  path.write_text('\n'.join(lines) + '\n')
  parts = [shards.read_byte_shard(path, 'tsv', i, 3) for i in range(3)]
  assert sum((list(p.sources) for p in parts), []) == [
      f'{path}:{n}' for n in range(2, 42)]
  assert all(isinstance(p.sources, readers.LineSources) for p in parts)


def test_a_label_error_names_the_line(tmp_path):
  path = tmp_path / 'c.tsv'
  path.write_text('label\ttext\na\tone\nb\ttwo\n')
  got = corpus.read_corpus(str(path))
  label_map = corpus.LabelMap.fit(['a'])
  try:
    label_map.encode(got.labels, got.sources)
  except corpus.DataError as e:
    assert f'{path}:3' in str(e)
  else:
    raise AssertionError('an unknown label must fail')
