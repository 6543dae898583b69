"""Property tests of the corpus readers (hypothesis).

Any valid TSV, CSV, JSONL or fastText file, written here with each format's
own writer (csv, json, plain joins), reads back to the same texts, labels and
line numbers; and any single corrupted line of such a file is reported with
its line number (strict), or skipped alone (lenient).
"""

import csv
import io
import json
import pathlib
import tempfile

from hypothesis import given, settings, strategies as st
import pytest

from linjax.data import corpus as data
from linjax.data import readers

SETTINGS = settings(max_examples=30, deadline=5000)
FORMATS = ('tsv', 'csv', 'jsonl', 'fasttext')
SUFFIX = dict(tsv='.tsv', csv='.csv', jsonl='.jsonl', fasttext='.txt')


def _chars(exclude: str):
  # No surrogates (not UTF-8) and no NUL; ``exclude`` holds each format's
  # separators.
  return st.characters(blacklist_categories=('Cs',),
                       blacklist_characters='\x00' + exclude)


def _visible(exclude: str, max_size: int = 30):
  return st.text(_chars(exclude), min_size=1, max_size=max_size).filter(
      lambda s: s.strip())


# What each format can hold in a text and in a label.
TEXT_EXCLUDE = dict(tsv='\t\n\r', csv='\r', jsonl='', fasttext='\n\r')
# fastText labels are one whitespace-free word; Python's str.split() decides.
FASTTEXT_LABEL = st.text(st.characters(whitelist_categories=('L', 'N')),
                         min_size=1, max_size=8)


def _fasttext_text(text: str) -> bool:
  words = text.split()
  return bool(words) and not words[0].startswith(readers.FASTTEXT_PREFIX)


@st.composite
def corpora(draw, fmt):
  """(format, [(label, text)]) of a valid file of that format."""
  n = draw(st.integers(1, 8))
  if fmt == 'fasttext':
    label = FASTTEXT_LABEL
    text = _visible(TEXT_EXCLUDE[fmt]).filter(_fasttext_text)
  else:
    label = _visible(TEXT_EXCLUDE[fmt] + ('\n' if fmt == 'csv' else ''), 10)
    text = _visible(TEXT_EXCLUDE[fmt])
  return draw(st.lists(st.tuples(label, text), min_size=n, max_size=n))


def _render(fmt, rows, ensure_ascii=False):
  """(file text, the 1-based line where each row starts)."""
  if fmt == 'tsv':
    lines = ['label\ttext'] + [f'{l}\t{t}' for l, t in rows]
    return '\n'.join(lines) + '\n', list(range(2, len(rows) + 2))
  if fmt == 'jsonl':
    lines = [json.dumps(dict(text=t, label=l), ensure_ascii=ensure_ascii)
             for l, t in rows]
    return '\n'.join(lines) + '\n', list(range(1, len(rows) + 1))
  if fmt == 'fasttext':
    lines = [f'{readers.FASTTEXT_PREFIX}{l} {t}' for l, t in rows]
    return '\n'.join(lines) + '\n', list(range(1, len(rows) + 1))
  out = io.StringIO()
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(['text', 'label'])
  starts, line = [], 2
  for label, text in rows:
    starts.append(line)
    before = out.tell()
    writer.writerow([text, label])
    line += out.getvalue()[before:].count('\n')
  return out.getvalue(), starts


def _expected_text(fmt, text):
  return text.strip() if fmt == 'fasttext' else text


def _read(fmt, content: bytes, lenient=(False,)):
  """Reads ``content`` as a file of ``fmt`` once per ``lenient`` value:
  ([Dataset or the DataError raised], the file's path)."""
  with tempfile.TemporaryDirectory() as d:
    path = pathlib.Path(d) / f'corpus{SUFFIX[fmt]}'
    path.write_bytes(content)
    out = []
    for mode in lenient:
      try:
        out.append(data.read_corpus(path, lenient=mode))
      except data.DataError as e:
        out.append(e)
    return out, str(path)


@pytest.mark.parametrize('fmt', FORMATS)
def test_valid_files_round_trip(fmt):

  @SETTINGS
  @given(rows=corpora(fmt), ascii_json=st.booleans(), crlf=st.booleans())
  def check(rows, ascii_json, crlf):
    content, starts = _render(fmt, rows, ascii_json)
    if crlf and fmt in ('tsv', 'fasttext'):  # Windows line ends read alike.
      content = content.replace('\n', '\r\n')
    (got,), path = _read(fmt, content.encode('utf-8'))
    assert not isinstance(got, Exception), got
    assert got.labels == [l for l, _ in rows]
    assert got.texts == [_expected_text(fmt, t) for _, t in rows]
    assert got.sources == [f'{path}:{n}' for n in starts]

  check()


def _corruptions(fmt):
  """Ways to break one line of a valid file of ``fmt``: line -> bad line."""
  common = [lambda line: line[:1] + '\udcff' + line[1:],  # invalid UTF-8
            ]
  if fmt == 'tsv':
    return common + [lambda line: line.replace('\t', ' ', 1),  # no tab
                     lambda line: line + '\textra',            # one too many
                     lambda line: ' \t' + line.split('\t', 1)[1],  # no label
                     lambda line: line.split('\t', 1)[0] + '\t  ']  # no text
  if fmt == 'jsonl':
    return common + [lambda line: line[:len(line) // 2],       # cut short
                     lambda line: json.dumps(dict(json.loads(line),
                                                  label=1.5)),
                     lambda line: json.dumps(dict(json.loads(line),
                                                  label=True)),
                     lambda line: json.dumps({'text': 'no label'}),
                     lambda line: json.dumps([json.loads(line)])]
  if fmt == 'fasttext':
    return common + [lambda line: line[len(readers.FASTTEXT_PREFIX):],
                     lambda line: line.split(' ', 1)[0]]       # no text
  return common + [lambda line: line + ',extra']               # 3 fields


@pytest.mark.parametrize('fmt', FORMATS)
def test_a_corrupted_line_is_reported_with_its_line_number(fmt):
  corruptions = _corruptions(fmt)

  @SETTINGS
  @given(rows=corpora(fmt), data_=st.data())
  def check(rows, data_):
    if fmt == 'csv':  # one physical line per record, so it can be edited
      rows = [(l.replace('\n', ' '), t.replace('\n', ' ')) for l, t in rows]
    content, starts = _render(fmt, rows)
    lines = content.split('\n')
    k = data_.draw(st.integers(0, len(rows) - 1), label='row')
    corrupt = data_.draw(st.sampled_from(corruptions), label='corruption')
    line = starts[k]
    lines[line - 1] = corrupt(lines[line - 1])
    raw = '\n'.join(lines).encode('utf-8', 'surrogateescape')
    (err, got), path = _read(fmt, raw, lenient=(False, True))
    assert isinstance(err, data.DataError), (lines[line - 1], err)
    assert err.line == line and f'{path}:{line}:' in str(err), str(err)
    if len(rows) == 1:
      assert isinstance(got, data.DataError) and path in str(got)
    else:
      assert got.labels == [l for i, (l, _) in enumerate(rows) if i != k]
      assert got.sources == [f'{path}:{n}' for i, n in enumerate(starts)
                             if i != k]

  check()
