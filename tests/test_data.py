"""Readers on small files written here, every bad-input case, labels, splits."""

from __future__ import annotations

import collections
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from linjax.data import corpus as data


def _data_dir() -> Path:
  return Path(os.environ.get('LINJAX_DATA_DIR') or
              Path(__file__).resolve().parents[2] / 'shared' / 'data')


def _write(path: Path, content) -> Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    path.write_text(content, encoding='utf-8')
  return path


def _raises(match_line, path, fn, *args, **kwargs):
  """Calls fn expecting a DataError naming ``path`` and ``:line:``."""
  with pytest.raises(data.DataError) as info:
    fn(*args, **kwargs)
  message = str(info.value)
  assert str(path) in message
  if match_line is not None:
    assert f'{path}:{match_line}:' in message
    assert info.value.line == match_line
  assert 'Fix:' in message
  return message


# -- well-formed files -------------------------------------------------------


def test_tsv(tmp_path):
  path = _write(tmp_path / 'train.tsv',
                'label\ttext\npos\tgood film\r\nneg\t bad  film \n\n')
  got = data.read_corpus(path)
  assert got.texts == ['good film', ' bad  film ']
  assert got.labels == ['pos', 'neg']
  assert got.sources == [f'{path}:2', f'{path}:3']
  # Columns in any order, extra columns, custom names.
  path = _write(tmp_path / 'b.tsv', 'id\tbody\tclass\n1\thello\tx\n2\tbye\ty\n')
  got = data.read_corpus(path, text_column='body', label_column='class')
  assert (got.texts, got.labels) == (['hello', 'bye'], ['x', 'y'])


def test_csv_quoting_and_multiline_records(tmp_path):
  path = _write(tmp_path / 'c.csv',
                'text,label\n"hello, world",a\n"two\nlines ""quoted""",b\n'
                'plain,c\n')
  got = data.read_corpus(path)
  assert got.texts == ['hello, world', 'two\nlines "quoted"', 'plain']
  assert got.labels == ['a', 'b', 'c']
  assert got.sources == [f'{path}:2', f'{path}:3', f'{path}:5']
  path = _write(tmp_path / 'd.csv', 'x,body,cat\n1,hi,p\n')
  got = data.read_corpus(path, text_column='body', label_column='cat')
  assert (got.texts, got.labels) == (['hi'], ['p'])


def test_jsonl(tmp_path):
  rows = [{'text': 'first doc', 'label': 'a'}, {'text': 'ünï', 'label': 'b'},
          {'body': 'x', 'y': 'z', 'text': 'third', 'label': 'a'}]
  path = _write(tmp_path / 'x.jsonl',
                '\n'.join(json.dumps(r, ensure_ascii=False) for r in rows))
  got = data.read_corpus(path)
  assert got.texts == ['first doc', 'ünï', 'third']
  assert got.labels == ['a', 'b', 'a']
  path = _write(tmp_path / 'y.json', json.dumps({'body': 'b', 'cat': 'c'}))
  got = data.read_corpus(path, text_column='body', label_column='cat')
  assert (got.texts, got.labels) == (['b'], ['c'])


def test_jsonl_integer_labels_on_every_line(tmp_path):
  path = _write(tmp_path / 'n.jsonl', '{"text": "x", "label": 3}\n'
                '{"text": "y", "label": -1}\n{"text": "z", "label": 3}\n')
  assert data.read_corpus(path).labels == ['3', '-1', '3']


def test_jsonl_mixed_label_kinds_refused(tmp_path, caplog):
  """Issue 13, item 4: a label 3 among string labels became its own class."""
  lines = [json.dumps({'text': f'doc {i}', 'label': 'ab'[i % 2]})
           for i in range(5)]
  lines.insert(3, json.dumps({'text': 'odd one', 'label': 3}))
  path = _write(tmp_path / 'm.jsonl', '\n'.join(lines) + '\n')
  message = _raises(4, path, data.read_corpus, path)
  assert 'the label 3 is a JSON integer' in message
  assert '5 line(s) (e.g. line 1) have string labels' in message
  with caplog.at_level(logging.WARNING):
    got = data.read_corpus(path, lenient=True)
  assert got.labels == ['a', 'b', 'a', 'b', 'a'] and 'odd one' not in got.texts
  assert 'skipped 1 bad line(s)' in caplog.text and 'line 4:' in caplog.text
  # The rarer kind is the bad one, wherever it is: here the string on line 1.
  path = _write(tmp_path / 'n.jsonl', '{"text": "x", "label": "3"}\n' + ''.join(
      f'{{"text": "y{i}", "label": {i}}}\n' for i in range(3)))
  assert 'the label "3" is a JSON string' in _raises(1, path, data.read_corpus,
                                                     path)


@pytest.mark.parametrize('label', ['true', 'false', 'null', '3.0', '1e3',
                                   '[1]', '{"a": 1}'])
def test_jsonl_labels_that_are_neither_strings_nor_integers(tmp_path, label):
  good = json.dumps({'text': 'x', 'label': 'a'})
  path = _write(tmp_path / 'b.jsonl',
                f'{good}\n{{"text": "y", "label": {label}}}\n{good}\n')
  message = _raises(2, path, data.read_corpus, path)
  assert f'got {json.dumps(json.loads(label))}' in message
  assert 'quote the label' in message


def test_fasttext_and_several_labels(tmp_path, caplog):
  path = _write(tmp_path / 'f.txt',
                '__label__pos good stuff\n__label__neg __label__x bad\n'
                '__label__a __label__b  more  text\n')
  with caplog.at_level(logging.WARNING):
    got = data.read_corpus(path)
  assert got.texts == ['good stuff', 'bad', 'more  text']
  assert got.labels == ['pos', 'neg', 'a']
  assert '2 line(s) have several labels' in caplog.text
  assert data.read_corpus(path, format='fasttext').labels == got.labels
  ft = _write(tmp_path / 'g.ft', '__label__q  w\n')
  assert data.read_corpus(ft).labels == ['q']


def test_folder(tmp_path, caplog):
  root = tmp_path / 'corpus'
  _write(root / 'sport' / '1.txt', 'goal!\n')
  _write(root / 'sport' / 'sub' / '2.txt', 'match')
  _write(root / 'tech' / 'a.txt', 'chips')
  _write(root / 'tech' / '.hidden', 'no')
  _write(root / 'README', 'stray')
  assert data.infer_format(root) == 'folder'
  with caplog.at_level(logging.WARNING):
    got = data.read_corpus(root)
  assert got.texts == ['goal!', 'match', 'chips']
  assert got.labels == ['sport', 'sport', 'tech']
  assert got.sources[1] == str(root / 'sport' / 'sub' / '2.txt')
  assert 'ignored 1 file(s)' in caplog.text


FORTUNE = '%% $FreeBSD$\n%\nFirst fortune,\n\ttwo lines.\n%\nSecond.\n%\n%\n'


def test_fortune_folder(tmp_path):
  root = tmp_path / 'fortunes'
  _write(root / 'wisdom', FORTUNE)
  _write(root / 'wisdom.dat', b'\x00\x00\x00\x02binary')
  _write(root / 'wisdom-o', 'Offensive.\n%\n')
  _write(root / 'jokes', 'Only one\n')
  assert data.infer_format(root) == 'fortune'
  got = data.read_corpus(root)
  assert got.texts == ['Only one', 'First fortune,\n\ttwo lines.', 'Second.']
  assert got.labels == ['jokes', 'wisdom', 'wisdom']
  assert got.sources == [f'{root / "jokes"}:1', f'{root / "wisdom"}:3',
                         f'{root / "wisdom"}:6']
  one = data.read_corpus(root / 'wisdom', format='fortune')
  assert one == data.Dataset(got.texts[1:], got.labels[1:], got.sources[1:])


def test_fortune_debian_layout(tmp_path):
  # /usr/share/games/fortunes: files, strfile .dat indexes, .u8 symlinks to
  # the same files, and an off/ sub-folder (fortunes-off).
  root = tmp_path / 'games' / 'fortunes'
  _write(root / 'art', 'Art is long.\n%\nLife is short.\n')
  _write(root / 'art.dat', b'\x00\x00\x00\x02')
  _write(root / 'science', 'E = mc2\n')
  _write(root / 'science.dat', b'\x00')
  os.symlink('art', root / 'art.u8')
  _write(root / 'off' / 'art', 'Not this.\n')
  assert data.infer_format(root) == 'fortune'
  got = data.read_corpus(root)
  assert got.labels == ['art', 'art', 'science']
  assert got.texts == ['Art is long.', 'Life is short.', 'E = mc2']
  debian = Path('/usr/share/games/fortunes')
  if debian.is_dir():
    assert len(data.read_corpus(debian).texts) > 100


@pytest.mark.parametrize('name,fmt', [('a.tsv', 'tsv'), ('a.CSV', 'csv'),
                                      ('a.jsonl', 'jsonl'), ('a.json', 'jsonl'),
                                      ('a.txt', 'fasttext'),
                                      ('a.ft', 'fasttext')])
def test_infer_format(tmp_path, name, fmt):
  assert data.infer_format(tmp_path / name) == fmt


# -- bad input ---------------------------------------------------------------


def test_missing_and_unknown(tmp_path):
  assert 'data.train' not in _raises(None, tmp_path / 'nope.tsv',
                                     data.read_corpus, tmp_path / 'nope.tsv')
  path = _write(tmp_path / 'a.xml', '<x/>')
  message = _raises(None, path, data.read_corpus, path)
  assert 'data.format' in message
  _raises(None, path, data.read_corpus, path, format='yaml')
  _raises(None, tmp_path, data.read_corpus, tmp_path, format='tsv')


def test_empty_files(tmp_path):
  for name in ('e.tsv', 'e.csv', 'e.jsonl', 'e.txt'):
    path = _write(tmp_path / name, '  \n')
    message = _raises(None, path, data.read_corpus, path)
    # Issue 13, item 9: the reader cannot know the flag (evaluate's --data,
    # train's data.train), so its fix names none.
    assert 'empty' in message and 'data.train' not in message
  path = _write(tmp_path / 'bad.txt', b'__label__a \xff\n')
  assert 'after skipping 1 of invalid UTF-8' in _raises(
      None, path, data.read_corpus, path, lenient=True)
  header_only = _write(tmp_path / 'h.tsv', 'label\ttext\n')
  assert 'no documents' in _raises(None, header_only, data.read_corpus,
                                   header_only)


def test_tsv_bad_lines_strict_and_lenient(tmp_path, caplog):
  path = _write(tmp_path / 'bad.tsv',
                'label\ttext\na\tfine\nno tab here\nb\t   \n\tno label\n'
                'c\ttoo\tmany\nd\tok\n')
  assert 'missing tab' in _raises(3, path, data.read_corpus, path)
  with caplog.at_level(logging.WARNING):
    got = data.read_corpus(path, lenient=True)
  assert got.texts == ['fine', 'ok']
  assert got.sources == [f'{path}:2', f'{path}:7']
  assert 'skipped 4 bad line(s)' in caplog.text
  for line in (3, 4, 5, 6):
    assert f'line {line}:' in caplog.text
  for content, line, words in (('label\ttext\na\tok\nb\t \n', 3, 'empty doc'),
                               ('label\ttext\na\tok\n\tx\n', 3, 'empty label'),
                               ('label\ttext\na\tok\n \tx\n', 3, 'empty label'),
                               ('lab\ttext\na\tb\n', 1, "column 'label'"),
                               ('label\tbody\na\tb\n', 1, "column 'text'")):
    path = _write(tmp_path / 'one.tsv', content)
    assert words in _raises(line, path, data.read_corpus, path)


def test_invalid_utf8(tmp_path, caplog):
  raw = 'label\ttext\na\tgood\nb\tbad \xff byte\nc\tfine\n'.encode('latin-1')
  path = _write(tmp_path / 'u.tsv', raw)
  assert 'UTF-8' in _raises(3, path, data.read_corpus, path)
  with caplog.at_level(logging.WARNING):
    got = data.read_corpus(path, lenient=True)
  assert got.labels == ['a', 'c']
  assert 'line 3: invalid UTF-8' in caplog.text
  ft = _write(tmp_path / 'u.txt', b'__label__a ok\n__label__b \xc3\x28\n')
  _raises(2, ft, data.read_corpus, ft)
  folder = tmp_path / 'f'
  bad = _write(folder / 'c' / 'x.txt', b'\xff\xfe')
  _raises(None, bad, data.read_corpus, folder)
  fortune = tmp_path / 'fo'
  bad = _write(fortune / 'w', b'ok\n%\n\xff\n%\n')
  _raises(3, bad, data.read_corpus, fortune, format='fortune')


def test_csv_bad_records(tmp_path):
  path = _write(tmp_path / 'b.csv', 'text,label\nok,a\nonly one field\n')
  assert 'field' in _raises(3, path, data.read_corpus, path)
  path = _write(tmp_path / 'q.csv', 'text,label\nok,a\n"unclosed,b\nc,d\n')
  assert 'unclosed' in _raises(3, path, data.read_corpus, path)
  path = _write(tmp_path / 'j.csv', 'text,label\n"x"y,a\nok,b\n')
  _raises(2, path, data.read_corpus, path)
  assert data.read_corpus(path, lenient=True).sources == [f'{path}:3']
  path = _write(tmp_path / 'e.csv', 'text,label\nok,a\n"",b\n')
  assert 'empty document' in _raises(3, path, data.read_corpus, path)
  assert data.read_corpus(path, lenient=True).texts == ['ok']


def test_jsonl_bad_lines(tmp_path):
  good = json.dumps({'text': 'x', 'label': 'a'})
  for bad, words in (('{"text": "x", ', 'invalid JSON'), ('[1, 2]', 'object'),
                     ('{"text": "x"}', "'label'"),
                     ('{"text": 3, "label": "a"}', 'JSON string'),
                     ('{"text": " ", "label": "a"}', 'empty document')):
    path = _write(tmp_path / 'b.jsonl', f'{good}\n{bad}\n{good}\n')
    assert words in _raises(2, path, data.read_corpus, path)
    assert len(data.read_corpus(path, lenient=True).texts) == 2


def test_fasttext_bad_lines(tmp_path):
  path = _write(tmp_path / 'b.txt', '__label__a ok\nno label\n__label__b\n')
  assert '__label__' in _raises(2, path, data.read_corpus, path)
  got = data.read_corpus(path, lenient=True)
  assert got.texts == ['ok']


def test_folder_bad_input(tmp_path):
  root = tmp_path / 'c'
  _write(root / 'x.txt', 'no class folders')
  _raises(None, root, data.read_corpus, root, format='folder')
  empty = _write(root / 'k' / 'e.txt', '  \n')
  _write(root / 'k' / 'ok.txt', 'fine')
  _raises(None, empty, data.read_corpus, root, format='folder')
  assert data.read_corpus(root, format='folder', lenient=True).texts == [
      'fine']


# -- class caps, labels, splits ----------------------------------------------


def test_max_per_class(tmp_path, caplog):
  lines = ['label\ttext'] + [f'{"ab"[i % 4 == 0]}\tdoc {i}' for i in range(40)]
  path = _write(tmp_path / 'm.tsv', '\n'.join(lines) + '\n')
  with caplog.at_level(logging.INFO):
    got = data.read_corpus(path, max_per_class=7, seed=1)
  assert collections.Counter(got.labels) == {'a': 7, 'b': 7}
  assert 'capped' in caplog.text
  numbers = [int(t.split()[1]) for t in got.texts]
  assert numbers == sorted(numbers)  # file order kept
  again = data.read_corpus(path, max_per_class=7, seed=1)
  assert again == got
  other = data.read_corpus(path, max_per_class=7, seed=2)
  assert other.texts != got.texts
  assert data.read_corpus(path, max_per_class=100) == data.read_corpus(path)


def test_label_map(tmp_path):
  labels = data.LabelMap.fit(['pos', 'neg', 'neu', 'pos'])
  assert labels.names == ['neg', 'neu', 'pos'] and labels.num_classes == 3
  ids = labels.encode(['pos', 'neg'])
  assert ids.dtype == np.int32 and ids.tolist() == [2, 0]
  assert labels.decode(ids) == ['pos', 'neg']
  assert data.LabelMap.from_list(json.loads(json.dumps(
      labels.to_list()))).names == labels.names
  with pytest.raises(data.DataError) as info:
    labels.encode(['pos', 'happy', 'sad'],
                  sources=['test.tsv:2', 'test.tsv:3', 'test.tsv:4'])
  message = str(info.value)
  assert message.startswith('test.tsv:3:') and "'happy'" in message
  assert "'neg', 'neu', 'pos'" in message and '2 unknown' in message
  with pytest.raises(data.DataError, match='happy'):
    labels.encode(['happy'])


def test_rare_classes():
  labels = ['a'] * 5 + ['b'] * 2 + ['c'] + ['d'] * 4 + ['e']
  assert data.rare_classes(labels, min_count=5) == {'c': 1, 'e': 1, 'b': 2,
                                                    'd': 4}
  assert list(data.rare_classes(labels, min_count=2)) == ['c', 'e']
  assert data.rare_classes(labels, min_count=1) == {}
  assert data.rare_classes(np.array([0, 0, 1, 2, 2, 2]), 3) == {1: 1, 0: 2}
  assert data.rare_classes([], 3) == {}
  with pytest.raises(ValueError, match='min_count'):
    data.rare_classes(labels, 0)


def _split_case(seed=0):
  rng = np.random.default_rng(seed)
  counts = {'a': 500, 'b': 120, 'c': 30, 'd': 2, 'e': 1}
  labels = np.array([k for k, n in counts.items() for _ in range(n)])
  return labels[rng.permutation(labels.shape[0])], counts


def test_stratified_split():
  labels, counts = _split_case()
  train, held = data.stratified_split(labels, 0.2, seed=3)
  assert np.array_equal(np.sort(np.concatenate([train, held])),
                        np.arange(labels.shape[0]))
  held_counts = collections.Counter(labels[held])
  for label, n in counts.items():
    if n >= 2:
      assert 1 <= held_counts[label] <= n - 1
      assert abs(held_counts[label] - 0.2 * n) <= 1
  assert held_counts['e'] == 0
  again = data.stratified_split(labels, 0.2, seed=3)
  assert all(np.array_equal(u, v) for u, v in zip(again, (train, held)))
  other = data.stratified_split(labels, 0.2, seed=4)
  assert not np.array_equal(other[1], held)
  train, held = data.stratified_split(labels, 0.0, seed=0)
  assert held.shape == (0,) and train.shape == labels.shape
  train, held = data.stratified_split(np.array([1, 1]), 0.01, seed=0)
  assert train.shape == held.shape == (1,)
  for bad in (1.0, -0.1, 1.5, float('nan')):
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
      data.stratified_split(labels, bad, seed=0)


# -- the real corpora --------------------------------------------------------


def test_real_corpus():
  path = _data_dir() / 'healthtweets' / 'train.tsv'
  if not path.exists():
    pytest.skip(f'{path} not found (set LINJAX_DATA_DIR)')
  got = data.read_corpus(path)
  with open(path, encoding='utf-8') as f:
    rows = [line.rstrip('\n').split('\t') for line in f][1:]
  assert got.labels == [r[0] for r in rows]
  assert got.texts == [r[1] for r in rows]
  assert len(set(got.labels)) == 16


# -- multi-label -------------------------------------------------------------


def test_fasttext_multi_label(tmp_path):
  path = _write(tmp_path / 'tags.txt',
                '__label__a __label__b  two  tags\n'
                '__label__c one tag\n\n'
                '__label__b __label__a __label__b repeated\n')
  got = data.read_corpus(path, multi_label=True)
  assert got.labels == [('a', 'b'), ('c',), ('b', 'a')]
  assert got.texts == ['two  tags', 'one tag', 'repeated']
  assert got.sources == [f'{path}:1', f'{path}:2', f'{path}:4']
  # Single-label reading of the same file keeps each line's first label.
  assert data.read_corpus(path).labels == ['a', 'c', 'b']


def test_multi_label_line_without_label(tmp_path):
  path = _write(tmp_path / 'tags.txt', '__label__a x\nno tags here\n')
  message = _raises(2, path, data.read_corpus, path, multi_label=True)
  assert 'allow_unlabeled' in message
  got = data.read_corpus(path, multi_label=True, allow_unlabeled=True)
  assert got.labels == [('a',), ()]
  assert got.texts == ['x', 'no tags here']
  got = data.read_corpus(path, multi_label=True, lenient=True)
  assert got.labels == [('a',)]
  # A label with no text is still an empty document.
  empty = _write(tmp_path / 'e.txt', '__label__a x\n__label__b\n')
  _raises(2, empty, data.read_corpus, empty, multi_label=True,
          allow_unlabeled=True)


def test_tsv_and_csv_multi_label(tmp_path):
  tsv = _write(tmp_path / 't.tsv', 'label\ttext\na| b |a\tfirst\n'
               '\tsecond\nc\tthird\n')
  _raises(3, tsv, data.read_corpus, tsv, multi_label=True,
          label_separator='|')
  got = data.read_corpus(tsv, multi_label=True, label_separator='|',
                         allow_unlabeled=True)
  assert got.labels == [('a', 'b'), (), ('c',)]
  assert got.texts == ['first', 'second', 'third']
  # The default separator is a comma; '|' is then part of the label.
  got = data.read_corpus(tsv, multi_label=True, allow_unlabeled=True)
  assert got.labels[0] == ('a| b |a',)
  csv_path = _write(tmp_path / 'c.csv',
                    'text,label\n"hello, world","x,y"\nbye,z\n')
  got = data.read_corpus(csv_path, multi_label=True)
  assert got.labels == [('x', 'y'), ('z',)]
  assert got.texts == ['hello, world', 'bye']


def test_jsonl_multi_label(tmp_path):
  path = _write(tmp_path / 'j.jsonl', '\n'.join(json.dumps(o) for o in [
      {'text': 'one', 'label': ['a', 'b']},
      {'text': 'two', 'label': 'c'},
      {'text': 'three', 'label': []},
      {'text': 'four', 'label': ['b', 'b']}]) + '\n')
  _raises(3, path, data.read_corpus, path, multi_label=True)
  got = data.read_corpus(path, multi_label=True, allow_unlabeled=True)
  assert got.labels == [('a', 'b'), ('c',), (), ('b',)]
  ints = _write(tmp_path / 'i.jsonl', '{"text": "x", "label": [1, 20]}\n'
                '{"text": "y", "label": [3]}\n')
  assert data.read_corpus(ints, multi_label=True).labels == [('1', '20'),
                                                              ('3',)]
  mixed = _write(tmp_path / 'm.jsonl', '{"text": "x", "label": ["a", 1]}\n')
  assert 'JSON list of strings' in _raises(1, mixed, data.read_corpus, mixed,
                                           multi_label=True)
  kinds = _write(tmp_path / 'k.jsonl', '{"text": "x", "label": ["a"]}\n'
                 '{"text": "y", "label": ["b"]}\n{"text": "z", "label": [3]}\n')
  assert 'mixed' in _raises(3, kinds, data.read_corpus, kinds,
                            multi_label=True)
  nested = _write(tmp_path / 'n.jsonl', '{"text": "x", "label": [["a"]]}\n')
  _raises(1, nested, data.read_corpus, nested, multi_label=True)


def test_folder_multi_label_is_one_label_each(tmp_path):
  root = tmp_path / 'corpus'
  _write(root / 'sport' / '1.txt', 'goal!\n')
  _write(root / 'tech' / '2.txt', 'chips\n')
  got = data.read_corpus(root, multi_label=True)
  assert got.labels == [('sport',), ('tech',)]


def test_multi_label_option_errors(tmp_path):
  tsv = _write(tmp_path / 't.tsv', 'label\ttext\na\tx\n')
  with pytest.raises(data.DataError, match='allow_unlabeled needs multi'):
    data.read_corpus(tsv, allow_unlabeled=True)
  with pytest.raises(data.DataError, match='max_per_class'):
    data.read_corpus(tsv, multi_label=True, max_per_class=3)
  with pytest.raises(data.DataError, match='label_separator'):
    data.read_corpus(tsv, multi_label=True, label_separator='\t')
  with pytest.raises(data.DataError, match='label_separator'):
    data.read_corpus(tsv, multi_label=True, label_separator='')


def test_label_map_multi_hot():
  sets = [('b', 'a'), (), ('c',), ('a', 'c')]
  labels = data.LabelMap.fit_multi(sets)
  assert labels.names == ['a', 'b', 'c']
  Y = labels.encode_multi(sets)
  assert Y.dtype == np.uint8
  assert Y.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1], [1, 0, 1]]
  assert labels.decode_multi(Y) == [('a', 'b'), (), ('c',), ('a', 'c')]
  test = [('a', 'zz'), ('yy', 'zz'), ('c',)]
  with pytest.raises(data.DataError) as info:
    labels.encode_multi(test, sources=['t.txt:1', 't.txt:2', 't.txt:3'])
  message = str(info.value)
  assert message.startswith('t.txt:1:') and "'zz'" in message
  assert '2 unknown' in message
  Y = labels.encode_multi(test, unknown='ignore')
  assert Y.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
  assert labels.unknown_labels(test) == {'yy': 1, 'zz': 2}
  assert labels.encode_multi([]).shape == (0, 3)


def test_multilabel_split():
  """Strata by rarest label: 'r' (2 documents) sends one to each side; the
  unlabelled documents are split like any stratum; seeded."""
  Y = np.zeros((40, 3), np.uint8)
  Y[:30, 0] = 1           # common
  Y[10:20, 1] = 1         # medium, rarest of docs 10..19
  Y[[3, 25], 2] = 1       # rare
  train, held = data.multilabel_split(Y, 0.25, seed=1)
  assert np.array_equal(np.sort(np.concatenate([train, held])),
                        np.arange(40))
  held_set = set(held.tolist())
  assert len({3, 25} & held_set) == 1
  assert len(set(range(10, 20)) & held_set) == round(0.25 * 10)
  assert len(set(range(30, 40)) & held_set) == round(0.25 * 10)
  again = data.multilabel_split(Y, 0.25, seed=1)
  assert np.array_equal(again[1], held)
  with pytest.raises(ValueError, match='multi-hot'):
    data.multilabel_split(np.zeros(4), 0.2, 0)


def test_real_multi_label_corpus():
  path = _data_dir() / 'debian_tags' / 'train.txt'
  if not path.exists():
    pytest.skip(f'{path} not found (set LINJAX_DATA_DIR)')
  got = data.read_corpus(path, multi_label=True)
  with open(path, encoding='utf-8') as f:
    lines = f.read().splitlines()
  assert len(got.labels) == len(lines)
  want = [tuple(t[9:] for t in line.split() if t.startswith('__label__'))
          for line in lines]
  assert got.labels == want
  assert len(data.LabelMap.fit_multi(got.labels)) == 69
