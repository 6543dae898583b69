"""Labelled corpora on the host: readers, label map, stratified split, errors.

numpy only, no JAX. `read_corpus` reads TSV, CSV, JSONL, fastText
(``__label__X text``), a folder with one sub-folder per class, or a folder of
fortune files, into a `Dataset` of parallel lists. Every document keeps its
source (``'train.tsv:17'``) so later errors can point at the file and line.
Bad input raises `DataError` naming the file and line and saying how to fix it;
with ``lenient=True`` bad lines are skipped, counted and logged instead.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

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


class Dataset(NamedTuple):
  """Parallel lists, one entry per document."""
  texts: list[str]
  labels: list[str]
  sources: list[str]  # 'file:line' (or the file of a one-file document).


class _Sink:
  """Collects documents and bad lines of one file (strict or lenient)."""

  def __init__(self, path, lenient: bool, fix: str):
    self.path, self.lenient, self.fix = str(path), lenient, fix
    self.texts, self.labels, self.sources = [], [], []
    self.bad: list[tuple[int | None, str]] = []

  def error(self, line: int | None, message: str, fix: str = '') -> None:
    if not self.lenient:
      raise DataError(message, path=self.path, line=line,
                      fix=(fix or self.fix) + ' Or pass lenient=True '
                      '(--config.data.lenient=True) to skip bad lines.')
    self.bad.append((line, message))

  def add(self, text: str, label: str, line: int | None,
          source: str | None = None) -> None:
    if not label.strip():
      self.error(line, 'empty label.')
    elif not text.strip():
      self.error(line, 'empty document (no text after stripping).',
                 'give the document some text or delete the line.')
    else:
      self.texts.append(text)
      self.labels.append(label)
      self.sources.append(source or f'{self.path}:{line}')

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
    raise DataError('the file is empty.', path=path,
                    fix='point data.train/data.test at a file with documents.')
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
  return Dataset(sink.texts, sink.labels, sink.sources)


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
              lenient: bool) -> Dataset:
  lines, bad = _lines(path, lenient)
  header = lines[0].rstrip('\r').split('\t')
  label_at = _column_index(header, label_column, path, 'label')
  text_at = _column_index(header, text_column, path, 'text')
  width = len(header)
  sink = _Sink(path, lenient, f'each line needs {width} tab-separated fields '
               f'({"<TAB>".join(header)}).')
  texts, labels, sources = sink.texts, sink.labels, sink.sources
  name = str(path)
  for number, line in enumerate(lines[1:], 2):
    if line.endswith('\r'):
      line = line[:-1]
    fields = line.split('\t')
    if len(fields) == width:
      label, text = fields[label_at], fields[text_at]
      if label and text.strip():  # the common case, inlined for speed.
        texts.append(text)
        labels.append(label)
        sources.append(f'{name}:{number}')
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
              lenient: bool) -> Dataset:
  text, bad = _read_nonempty(path, lenient)
  reader = csv.reader(io.StringIO(text, newline=''), strict=True)
  sink = _Sink(path, lenient, 'check the quoting and the number of fields.')
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


def _read_jsonl(path: Path, text_column: str, label_column: str,
                lenient: bool) -> Dataset:
  lines, bad = _lines(path, lenient)
  sink = _Sink(path, lenient, f'each line must be a JSON object with '
               f'{text_column!r} and {label_column!r} fields.')
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
    if not isinstance(text, str) or isinstance(label, (dict, list)):
      sink.error(number, 'the text must be a string and the label a string '
                 'or number.')
      continue
    sink.add(text, str(label), number)
  return _finish(sink, bad)


def _read_fasttext(path: Path, lenient: bool) -> Dataset:
  lines, bad = _lines(path, lenient)
  sink = _Sink(path, lenient, f'write each line as "{FASTTEXT_PREFIX}LABEL '
               'text".')
  several = 0
  for number, line in enumerate(lines, 1):
    words = line.split(None, 1)
    if not words:
      continue
    if not words[0].startswith(FASTTEXT_PREFIX):
      sink.error(number, f'no {FASTTEXT_PREFIX} label at the start.')
      continue
    label = words[0][len(FASTTEXT_PREFIX):]
    rest = words[1] if len(words) > 1 else ''
    extra = rest.split(None, 1)
    if extra and extra[0].startswith(FASTTEXT_PREFIX):
      several += 1
      while extra and extra[0].startswith(FASTTEXT_PREFIX):
        rest = extra[1] if len(extra) > 1 else ''
        extra = rest.split(None, 1)
    sink.add(rest.strip(), label, number)
  if several:
    logger.warning('%s: %d line(s) have several labels; each keeps its first.',
                   path, several)
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


def read_corpus(path, format: str = '',  # pylint: disable=redefined-builtin
                text_column: str = 'text', label_column: str = 'label', lenient: bool = False,
                max_per_class: int = 0, seed: int = 0) -> Dataset:
  """Reads a labelled corpus.

  Args:
    path: a file (tsv, csv, jsonl, fasttext), a folder (folder, fortune) or
      one fortune file (format='fortune'; its name is the label).
    format: one of `FORMATS`; empty: `infer_format`.
    text_column: the text column (TSV header, CSV header, JSONL field).
    label_column: the label column, likewise.
    lenient: skip bad lines (counted and logged) instead of raising.
    max_per_class: keep at most this many documents per class (0: all),
      chosen at random with ``seed``, in file order.
    seed: seed of that choice.

  Returns:
    A `Dataset` of N documents.

  Raises:
    DataError: naming the file and line of the first bad input.
  """
  path = Path(os.path.expanduser(str(path)))
  if not path.exists():
    raise DataError('no such file or folder.', path=path,
                    fix='check data.train/data.test.')
  fmt = format.lower() or infer_format(path)
  if fmt not in FORMATS:
    raise DataError(f'unknown format {fmt!r}.', path=path,
                    fix=f'set data.format to one of {", ".join(FORMATS)}.')
  if fmt != 'fortune' and (fmt == 'folder') != path.is_dir():
    raise DataError(f'format {fmt!r} needs a '
                    f'{"folder" if fmt == "folder" else "file"}.',
                    path=path, fix='check data.format.')
  if fmt == 'tsv':
    data = _read_tsv(path, text_column, label_column, lenient)
  elif fmt == 'csv':
    data = _read_csv(path, text_column, label_column, lenient)
  elif fmt == 'jsonl':
    data = _read_jsonl(path, text_column, label_column, lenient)
  elif fmt == 'fasttext':
    data = _read_fasttext(path, lenient)
  elif fmt == 'folder':
    data = _read_folder(path, lenient)
  else:
    data = _read_fortune(path, lenient)
  if max_per_class:
    data = cap_per_class(data, max_per_class, seed, str(path))
  return data


def cap_per_class(data: Dataset, max_per_class: int, seed: int = 0,
                  name: str = 'corpus') -> Dataset:
  """At most ``max_per_class`` documents per class (seeded), in input order."""
  if max_per_class < 0:
    raise ValueError(f'data.max_per_class must be >= 0, got {max_per_class}')
  if not max_per_class:
    return data
  labels = np.asarray(data.labels)
  rng = np.random.default_rng(seed)
  keep, capped = [], []
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    if members.shape[0] > max_per_class:
      capped.append(f'{label} {members.shape[0]}->{max_per_class}')
      members = rng.choice(members, max_per_class, replace=False)
    keep.append(members)
  if not capped:
    return data
  keep = np.sort(np.concatenate(keep)).tolist()
  logger.info('%s: capped classes at %d documents each (seed %d): %s', name,
              max_per_class, seed, ', '.join(capped))
  return Dataset(*([column[i] for i in keep] for column in data))


class LabelMap:
  """Class names <-> ids 0..C-1 (sorted names, so the map is reproducible)."""

  def __init__(self, names: Iterable[str]):
    self.names = [str(n) for n in names]
    self._index = {n: i for i, n in enumerate(self.names)}
    if len(self._index) != len(self.names):
      raise ValueError('LabelMap: duplicate label names.')

  @classmethod
  def fit(cls, labels: Iterable[str]) -> LabelMap:
    """The sorted distinct labels."""
    return cls(sorted(set(labels)))

  @property
  def num_classes(self) -> int:
    return len(self.names)

  def encode(self, labels: Sequence[str],
             sources: Sequence[str] | None = None) -> np.ndarray:
    """int32 [N] ids; a label unseen in training raises DataError."""
    index = self._index
    ids = [index.get(label, -1) for label in labels]
    if -1 in ids:
      first = ids.index(-1)
      unknown = sorted({l for l, i in zip(labels, ids) if i < 0})
      path, line = None, None
      if sources is not None:
        path, _, number = str(sources[first]).rpartition(':')
        if number.isdigit():
          line = int(number)
        else:
          path = str(sources[first])
      known = ', '.join(map(repr, self.names[:20])) + (
          ', ...' if self.num_classes > 20 else '')
      raise DataError(
          f'label {labels[first]!r} was not seen in training '
          f'({len(unknown)} unknown label(s): '
          f'{", ".join(map(repr, unknown[:5]))}); known labels: {known}.',
          path=path, line=line, fix='train on data that holds every class, '
          'or remove these documents.')
    return np.asarray(ids, np.int32)

  def decode(self, ids) -> list[str]:
    """Class names of int ids [N]."""
    return [self.names[i] for i in np.asarray(ids).tolist()]

  def to_list(self) -> list[str]:
    return list(self.names)

  @classmethod
  def from_list(cls, names: Sequence[str]) -> LabelMap:
    return cls(names)

  def __len__(self) -> int:
    return self.num_classes

  def __repr__(self) -> str:
    return f'LabelMap({self.names!r})'


def stratified_split(labels, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Seeded stratified split of indices.

  Each class of n documents sends ``round(fraction * n)`` of them to the
  held-out side, but at least one to each side when n >= 2 and fraction > 0
  (a class of one stays in train).

  Args:
    labels: [N] class labels (ints or strings).
    fraction: held-out share, 0 <= fraction < 1 (0: nothing held out).
    seed: seed of the choice.

  Returns:
    (train_idx, held_idx): sorted int64 arrays partitioning range(N).
  """
  fraction = float(fraction)
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f'split fraction must be in [0, 1), got {fraction}')
  labels = np.asarray(labels)
  held = []
  if fraction > 0 and labels.shape[0]:
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    by_class = np.argsort(inverse, kind='stable')
    bounds = np.cumsum(np.bincount(inverse, minlength=classes.shape[0]))
    for members in np.split(by_class, bounds[:-1]):
      n = members.shape[0]
      if n < 2:
        continue
      take = min(max(int(round(fraction * n)), 1), n - 1)
      held.append(rng.permutation(members)[:take])
  held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
  mask = np.ones(labels.shape[0], bool)
  mask[held] = False
  return np.flatnonzero(mask).astype(np.int64), held.astype(np.int64)
