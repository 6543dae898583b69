"""Corpus file readers: TSV, CSV, JSONL, fastText, class folders, fortunes.

Plain Python (no numpy, no JAX). `read` turns one file (or folder) of a
given format into a `Dataset` of parallel lists; every document keeps its source
(``'train.tsv:17'``) so later errors can point at the file and line. Bad input
raises `DataError` naming the file and line and saying how to fix it; with
``lenient=True`` bad lines are skipped, counted and logged instead.
JSONL labels are JSON strings, or JSON integers on every line of the file
(then read as their decimal strings); a file mixing the two is refused at the
lines of the rarer kind. `linjax.data.read_corpus` checks the path, picks the format (`infer_format`)
and re-exports these names.

Multi-label (``multi=LabelSets(...)``): every document has a tuple of labels
(its tags, in file order, without repeats): fastText lines with several
leading ``__label__`` prefixes; a TSV/CSV label field split at
``LabelSets.separator``; a JSONL label that is a list of labels (a single
string or integer is a one-label list). A line with no label is an error
(file and line) unless ``LabelSets.allow_unlabeled``: then it is a document
with no tags, the empty tuple. Folders and fortune files give one-label
tuples.
"""

from __future__ import annotations

import array
import collections.abc
import csv
import io
import json
import logging
from pathlib import Path
from typing import NamedTuple, Sequence

FORMATS = ('tsv', 'csv', 'jsonl', 'fasttext', 'folder', 'fortune')
_EXTENSIONS = {'.tsv': 'tsv', '.csv': 'csv', '.jsonl': 'jsonl',
               '.json': 'jsonl', '.txt': 'fasttext', '.ft': 'fasttext'}
FASTTEXT_PREFIX = '__label__'
_SHOW_LINES = 5  # line numbers quoted when reporting skipped lines.

logger = logging.getLogger(__name__)


class DataError(ValueError):
  """Bad input data: the message names the file, the line and the fix.

  Attributes:
    path: the file (or folder) at fault, or None.
    line: its 1-based line number, or None.
  """

  def __init__(self, message: str, *, path=None, line: int | None = None,
               fix: str = ''):
    where = '' if path is None else (
        f'{path}:{line}: ' if line is not None else f'{path}: ')
    super().__init__(f'{where}{message}' + (f' Fix: {fix}' if fix else ''))
    self.path = None if path is None else str(path)
    self.line = line


class LineSources(collections.abc.Sequence):
  """The sources ``'path:line'`` of a file's documents, each made when it
  is read: the file's name and one int64 line number per document.

  A sequence of str like a list (indexing, slices, ``len``, iteration,
  ``==`` with any sequence of the same strings); a corpus of millions of
  lines keeps 8 bytes a document instead of a string each, and making them
  no longer costs the reader a string format per line.
  """

  __slots__ = ('path', 'lines')

  def __init__(self, path: str, lines):
    self.path = str(path)
    self.lines = lines if isinstance(lines, array.array) else array.array(
        'q', lines)

  def __len__(self) -> int:
    return len(self.lines)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return LineSources(self.path, self.lines[index])
    return f'{self.path}:{self.lines[index]}'

  def __iter__(self):
    prefix = self.path + ':'
    return (prefix + str(n) for n in self.lines)

  def __eq__(self, other) -> bool:
    if isinstance(other, LineSources):
      return self.path == other.path and self.lines == other.lines
    if isinstance(other, collections.abc.Sequence) and not isinstance(
        other, str):
      return len(other) == len(self) and all(
          a == b for a, b in zip(self, other))
    return NotImplemented

  def __add__(self, other) -> list:
    return list(self) + list(other)

  def __radd__(self, other) -> list:
    return list(other) + list(self)

  def __repr__(self) -> str:
    return f'LineSources({self.path!r}, {len(self)} lines)'


class Dataset(NamedTuple):
  """Parallel lists, one entry per document."""
  texts: list[str]
  labels: list  # str, or a tuple of str per document (multi-label).
  # 'file:line' (or the file of a one-file document): a `LineSources` for
  # a line-based file, else a list of str.
  sources: Sequence[str]


class LabelSets(NamedTuple):
  """How a multi-label file is read (see the module docstring).

  separator: splits a TSV/CSV label field into labels (spaces around each
    label are stripped).
  allow_unlabeled: a line with no label is a document with no tags, not an
    error.
  """
  separator: str = ','
  allow_unlabeled: bool = False


_NO_LABEL_FIX = ('give the line at least one label, or pass '
                 'allow_unlabeled=True (--config.data.allow_unlabeled=True) '
                 'to read it as a document with no tags.')


class _Sink:
  """Collects documents and bad lines of one file (strict or lenient)."""

  def __init__(self, path, lenient: bool, fix: str,
               multi: LabelSets | None = None):
    self.path, self.lenient, self.fix = str(path), lenient, fix
    self.multi = multi
    self.texts, self.labels = [], []
    # Each document's line (int) in ``self.path``, or its own source (str).
    self.sources: list = []
    self.bad: list[tuple[int | None, str]] = []

  def error(self, line: int | None, message: str, fix: str = '') -> None:
    if not self.lenient:
      raise DataError(message, path=self.path, line=line,
                      fix=(fix or self.fix) + ' Or pass lenient=True '
                      '(--config.data.lenient=True) to skip bad lines.')
    self.bad.append((line, message))

  def add(self, text: str, label, line: int | None,
          source: str | None = None) -> None:
    """Adds a document; ``label`` is a str, or (multi-label) a str to split
    at the separator or a list of label strings."""
    if self.multi is not None:
      self._add_set(text, label, line, source)
    elif not label.strip():
      self.error(line, 'empty label.')
    elif not text.strip():
      self.error(line, 'empty document (no text after stripping).',
                 'give the document some text or delete the line.')
    else:
      self.texts.append(text)
      self.labels.append(label)
      self.sources.append(source or line)

  def _add_set(self, text: str, label, line: int | None,
               source: str | None) -> None:
    if isinstance(label, str):
      label = label.split(self.multi.separator)
    tags = tuple(dict.fromkeys(t.strip() for t in label if t.strip()))
    if not tags and not self.multi.allow_unlabeled:
      self.error(line, 'no label (multi-label: a document with no tags).',
                 _NO_LABEL_FIX)
    elif not text.strip():
      self.error(line, 'empty document (no text after stripping).',
                 'give the document some text or delete the line.')
    else:
      self.texts.append(text)
      self.labels.append(tags)
      self.sources.append(source or line)

  def report(self) -> None:
    if self.bad:
      first = '; '.join(f'line {n}: {m}' if n else m
                        for n, m in self.bad[:_SHOW_LINES])
      logger.warning('%s: skipped %d bad line(s) (lenient mode); first: %s',
                     self.path, len(self.bad), first)


def _read_text(path: Path, lenient: bool) -> tuple[str, list[int]]:
  """Decodes a UTF-8 file; returns (text, 1-based lines with invalid UTF-8)."""
  try:
    data = path.read_bytes()
  except OSError as e:
    raise DataError(f'cannot read: {e.strerror}.', path=path,
                    fix='check the path and its permissions.') from e
  if data.startswith(b'\xef\xbb\xbf'):
    data = data[3:]
  try:
    return data.decode('utf-8'), []
  except UnicodeDecodeError as e:
    line = data.count(b'\n', 0, e.start) + 1
    if not lenient:
      raise DataError(f'invalid UTF-8 at byte {e.start}.', path=path,
                      line=line, fix='re-encode the file as UTF-8 (e.g. '
                      '`iconv -f latin1 -t utf-8`), or pass lenient=True to '
                      'skip such lines.') from e
  good, bad = [], []
  for number, raw in enumerate(data.split(b'\n'), 1):
    try:
      good.append(raw.decode('utf-8'))
    except UnicodeDecodeError:
      good.append('')  # keeps the line numbering; reported below.
      bad.append(number)
  return '\n'.join(good), bad


def _read_nonempty(path: Path, lenient: bool) -> tuple[str, list[int]]:
  """`_read_text`, raising DataError for a file with nothing but blanks."""
  text, bad = _read_text(path, lenient)
  if not text.strip():
    raise DataError('the file is empty.' if not bad else
                    f'no lines left after skipping {len(bad)} of invalid '
                    'UTF-8.', path=path,
                    fix='give a file that holds documents.')
  return text, bad


def _lines(path: Path, lenient: bool) -> tuple[list[str], list[int]]:
  """The lines of a non-empty text file, and those with invalid UTF-8."""
  text, bad = _read_nonempty(path, lenient)
  return text.split('\n'), bad


def _finish(sink: _Sink, bad_utf8: Sequence[int]) -> Dataset:
  for line in bad_utf8:
    sink.error(line, 'invalid UTF-8.')
  sink.bad.sort(key=lambda b: b[0] or 0)
  sink.report()
  if not sink.texts:
    raise DataError('no documents found.', path=sink.path,
                    fix='check the file format (data.format) and columns.')
  return Dataset(sink.texts, sink.labels, sink_sources(sink))


def sink_sources(sink: _Sink) -> Sequence[str]:
  """The sources of ``sink``'s documents: a `LineSources` when every one
  is a line of its file, else a list of str."""
  if set(map(type, sink.sources)) <= {int}:   # C speed
    return LineSources(sink.path, sink.sources)
  return [s if isinstance(s, str) else f'{sink.path}:{s}'
          for s in sink.sources]


def _column_index(header: Sequence[str], name: str, path, kind: str) -> int:
  try:
    return list(header).index(name)
  except ValueError:
    raise DataError(
        f'the header has no {kind} column {name!r} (columns: '
        f'{", ".join(map(repr, header))}).', path=path, line=1,
        fix=f'add a header line naming the columns, or set '
        f'data.{kind}_column to one of them.') from None


def _read_tsv(path: Path, text_column: str, label_column: str,
              lenient: bool, multi: LabelSets | None = None) -> Dataset:
  lines, bad = _lines(path, lenient)
  header = lines[0].rstrip('\r').split('\t')
  label_at = _column_index(header, label_column, path, 'label')
  text_at = _column_index(header, text_column, path, 'text')
  width = len(header)
  sink = _Sink(path, lenient, f'each line needs {width} tab-separated fields '
               f'({"<TAB>".join(header)}).', multi)
  texts, labels, sources = sink.texts, sink.labels, sink.sources
  for number, line in enumerate(lines[1:], 2):
    if line.endswith('\r'):
      line = line[:-1]
    fields = line.split('\t')
    if len(fields) == width:
      label, text = fields[label_at], fields[text_at]
      if multi is None and label.strip() and text.strip():  # common, inlined
        texts.append(text)
        labels.append(label)
        sources.append(number)
        continue
      sink.add(text, label, number)
    elif not line.strip():
      continue  # blank lines (e.g. at the end of the file) hold nothing.
    elif len(fields) < width:
      sink.error(number, f'{len(fields)} tab-separated field(s), expected '
                 f'{width} (missing tab?).')
    else:
      sink.error(number, f'{len(fields)} tab-separated fields, expected '
                 f'{width} (a tab inside the text?).',
                 'replace tabs inside texts by spaces.')
  return _finish(sink, bad)


def _read_csv(path: Path, text_column: str, label_column: str,
              lenient: bool, multi: LabelSets | None = None) -> Dataset:
  text, bad = _read_nonempty(path, lenient)
  reader = csv.reader(io.StringIO(text, newline=''), strict=True)
  sink = _Sink(path, lenient, 'check the quoting and the number of fields.',
               multi)
  try:
    header = next(reader)
  except csv.Error as e:
    raise DataError(f'bad CSV header: {e}.', path=path, line=1,
                    fix='check the quoting of the first line.') from e
  label_at = _column_index(header, label_column, path, 'label')
  text_at = _column_index(header, text_column, path, 'text')
  line = reader.line_num
  while True:
    start = line + 1
    try:
      row = next(reader)
    except StopIteration:
      break
    except csv.Error as e:
      span = (f' (the record runs on to line {reader.line_num}: an unclosed '
              'quote?)' if reader.line_num > start else '')
      sink.error(start, f'bad CSV record: {e}{span}.')
      line = reader.line_num
      continue
    line = reader.line_num
    if not row or not ''.join(row).strip():
      continue
    if len(row) != len(header):
      sink.error(start, f'{len(row)} field(s), expected {len(header)}.')
      continue
    sink.add(row[text_at], row[label_at], start)
  return _finish(sink, bad)


def _label_kind(label) -> str | None:
  """'string' or 'integer' (JSON labels the reader accepts), else None."""
  if isinstance(label, str):
    return 'string'
  if isinstance(label, int) and not isinstance(label, bool):
    return 'integer'
  return None


def _list_kind(labels: list) -> str | None:
  """The kind of a JSON list of labels: 'string', 'integer', 'none' (empty),
  or None (an element of neither kind, or both kinds mixed)."""
  kinds = {_label_kind(label) for label in labels}
  if not kinds:
    return 'none'
  return kinds.pop() if len(kinds) == 1 and None not in kinds else None


def _read_jsonl(path: Path, text_column: str, label_column: str,
                lenient: bool, multi: LabelSets | None = None) -> Dataset:
  """JSON lines. Labels are JSON strings, or JSON integers on every line
  (3 becomes '3'); a label of the other kind than most lines' (3 beside
  "3" would be two classes), a float, bool, null, list or object is bad.
  Multi-label: a JSON list of such labels (empty: no tags), or one label."""
  lines, bad = _lines(path, lenient)
  sink = _Sink(path, lenient, f'each line must be a JSON object with '
               f'{text_column!r} and {label_column!r} fields.', multi)
  rows, kinds = [], {'string': [], 'integer': []}
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      obj = json.loads(line)
    except json.JSONDecodeError as e:
      sink.error(number, f'invalid JSON ({e.msg}).')
      continue
    if not isinstance(obj, dict):
      sink.error(number, 'not a JSON object.')
      continue
    missing = [k for k in (label_column, text_column) if k not in obj]
    if missing:
      sink.error(number, f'missing field {missing[0]!r} (fields: '
                 f'{", ".join(map(repr, obj))}).',
                 'set data.text_column/data.label_column to the field names.')
      continue
    text, label = obj[text_column], obj[label_column]
    if multi is not None:
      label = label if isinstance(label, list) else [label]
      kind = _list_kind(label)
    else:
      kind = _label_kind(label)
    if not isinstance(text, str):
      sink.error(number, f'the text must be a JSON string, got '
                 f'{json.dumps(text)[:40]}.')
      continue
    if kind is None:
      what = ('a JSON list of strings or of integers' if multi is not None
              else 'a JSON string or integer')
      sink.error(number, f'the label must be {what}, got '
                 f'{json.dumps(label)[:40]}.', 'quote the label, e.g. '
                 '"label": "3".')
      continue
    if kind != 'none':
      kinds[kind].append(number)
    rows.append((number, text, label, kind))
  usual = max(kinds, key=lambda k: len(kinds[k]))
  for number, text, label, kind in rows:
    if multi is not None and kind in (usual, 'none'):
      sink.add(text, [str(t) for t in label], number)
    elif kind != usual:
      sink.error(number, f'the label {json.dumps(label)} is a JSON {kind}, '
                 f'but {len(kinds[usual])} line(s) (e.g. line '
                 f'{kinds[usual][0]}) have {usual} labels; mixed, 3 and "3" '
                 'would be two classes.', 'write every label the same way '
                 '(all quoted, or all integers).')
    else:
      sink.add(text, str(label), number)
  return _finish(sink, bad)


def _read_fasttext(path: Path, lenient: bool,
                   multi: LabelSets | None = None) -> Dataset:
  """fastText: leading ``__label__X`` words, then the text. Single-label
  keeps the first label of a line; multi-label (``multi``) keeps them all."""
  lines, bad = _lines(path, lenient)
  sink = _Sink(path, lenient, f'write each line as "{FASTTEXT_PREFIX}LABEL '
               'text".', multi)
  several = 0
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    tags, rest = [], line
    words = rest.split(None, 1)
    while words and words[0].startswith(FASTTEXT_PREFIX):
      tags.append(words[0][len(FASTTEXT_PREFIX):])
      rest = words[1] if len(words) > 1 else ''
      words = rest.split(None, 1)
    if not tags and not (multi and multi.allow_unlabeled):
      sink.error(number, f'no {FASTTEXT_PREFIX} label at the start.',
                 _NO_LABEL_FIX if multi else '')
    elif multi is not None:
      sink.add(rest.strip(), tags, number)
    else:
      several += len(tags) > 1
      sink.add(rest.strip(), tags[0], number)
  if several:
    # The fix a command-line user types (the library's is multi_label=True).
    logger.warning('%s: %d line(s) have several labels; each keeps its first. '
                   'Multi-label training keeps them all: '
                   '--config.train.loss=sigmoid (or --config=multilabel; in '
                   'Python read_corpus(..., multi_label=True)).', path,
                   several)
  return _finish(sink, bad)


def _visible_files(folder: Path) -> list[Path]:
  return sorted(p for p in folder.iterdir()
                if not p.name.startswith('.') and p.is_file())


def _read_folder(path: Path, lenient: bool) -> Dataset:
  classes = sorted(p for p in path.iterdir()
                   if p.is_dir() and not p.name.startswith('.'))
  if not classes:
    raise DataError('no class sub-folders.', path=path, fix='use one '
                    'sub-folder per class holding one file per document.')
  stray = _visible_files(path)
  if stray:
    logger.warning('%s: ignored %d file(s) outside the class sub-folders '
                   '(e.g. %s).', path, len(stray), stray[0].name)
  sink = _Sink(path, lenient, 'one UTF-8 text file per document.')
  for folder in classes:
    files = sorted(p for p in folder.rglob('*') if p.is_file() and not any(
        part.startswith('.') for part in p.relative_to(folder).parts))
    if not files:
      logger.warning('%s: class folder %s holds no files.', path, folder.name)
    for file in files:
      try:
        text = file.read_bytes().decode('utf-8')
      except UnicodeDecodeError as e:
        if not lenient:
          raise DataError(f'invalid UTF-8 at byte {e.start}.', path=file,
                          fix='re-encode the file as UTF-8, or pass '
                          'lenient=True to skip it.') from e
        sink.bad.append((None, f'{file}: invalid UTF-8'))
        continue
      if not text.strip():
        if not lenient:
          raise DataError('empty document.', path=file,
                          fix='delete the file or give it some text.')
        sink.bad.append((None, f'{file}: empty document'))
        continue
      sink.add(text.strip(), folder.name, None, str(file))
  return _finish(sink, [])


def fortune_files(path) -> list[Path]:
  """The fortune files of a folder: skips index (``.dat``), ``.u8`` links,
  offensive (``-o``) files, sub-folders and duplicates of the same file."""
  seen, files = set(), []
  for p in _visible_files(Path(path)):
    if p.suffix in ('.dat', '.u8') or p.name.endswith('-o'):
      continue
    real = p.resolve()
    if real not in seen:
      seen.add(real)
      files.append(p)
  return files


def _read_fortune(path: Path, lenient: bool) -> Dataset:
  files = fortune_files(path) if path.is_dir() else [path]
  if not files:
    raise DataError('no fortune files.', path=path, fix='give a folder of '
                    'fortune files (documents separated by "%" lines).')
  sink = _Sink(path, lenient, '')
  all_bad = []
  for file in files:
    text, bad = _read_text(file, lenient)
    all_bad += [(file, n) for n in bad]
    record, start = [], 1
    for number, line in enumerate(text.split('\n') + ['%'], 1):
      line = line.rstrip('\r')
      if line == '%':
        body = '\n'.join(record).strip()
        if body:  # empty records (a leading or doubled '%') are no documents.
          sink.add(body, file.name, start, f'{file}:{start}')
        record, start = [], number + 1
      elif not line.startswith('%%'):  # '%%' lines are strfile comments.
        record.append(line)
  for file, n in all_bad:
    sink.bad.append((None, f'{file}:{n}: invalid UTF-8'))
  return _finish(sink, [])


def _looks_like_fortune_folder(path: Path) -> bool:
  files = _visible_files(path)
  names = {p.name for p in files}
  if any(p.suffix == '.dat' and p.stem in names for p in files):
    return True  # strfile indexes, as in /usr/share/games/fortunes.
  if any(p.is_dir() for p in path.iterdir() if not p.name.startswith('.')):
    return False
  for p in files[:20]:
    with open(p, 'rb') as f:
      if b'\n%\n' in f.read(1 << 16):
        return True
  return False


def infer_format(path) -> str:
  """The reader for ``path``: by extension, or folder/fortune for a folder."""
  path = Path(path)
  if path.is_dir():
    return 'fortune' if _looks_like_fortune_folder(path) else 'folder'
  fmt = _EXTENSIONS.get(path.suffix.lower())
  if fmt is None:
    raise DataError(f'cannot tell the format from the extension '
                    f'{path.suffix!r}.', path=path, fix='set data.format to '
                    f'one of {", ".join(FORMATS)}.')
  return fmt


def read(path: Path, fmt: str, text_column: str = 'text',
         label_column: str = 'label', lenient: bool = False,
         multi: LabelSets | None = None) -> Dataset:
  """Reads ``path`` with the reader of ``fmt``, one of `FORMATS`.

  `linjax.data.read_corpus` documents the arguments and checks ``path`` and
  ``fmt`` first; this only dispatches. Returns a `Dataset` of N documents;
  with ``multi`` (multi-label) each label is a tuple of labels.
  """
  if fmt == 'tsv':
    return _read_tsv(path, text_column, label_column, lenient, multi)
  if fmt == 'csv':
    return _read_csv(path, text_column, label_column, lenient, multi)
  if fmt == 'jsonl':
    return _read_jsonl(path, text_column, label_column, lenient, multi)
  if fmt == 'fasttext':
    return _read_fasttext(path, lenient, multi)
  data = (_read_folder(path, lenient) if fmt == 'folder'
          else _read_fortune(path, lenient))
  if multi is not None:  # one class per document: one-label sets
    data = data._replace(labels=[(label,) for label in data.labels])
  return data
