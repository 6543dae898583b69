"""Each process of a multi-process run reads only its own part of the corpus.

Two ways to cut a corpus into P parts, part i for process i, such that the
parts one after another in process order are the corpus in its order (what a
single process reads), every line read by exactly one process:

* One file, by bytes (`byte_range`, `read_byte_shard`): part i holds the
  lines that START in bytes ``[size * i // P, size * (i + 1) // P)``, so the
  cut points move forward to the next line start. A process reads its range
  (and, for TSV, the header line), never the rest. Line-oriented formats
  only: TSV, JSONL and fastText; CSV records may span lines (quoted
  newlines), so a CSV corpus is split into files instead.
* Several files (`shard_files`, `read_file_shard`): the files of a glob, in
  sorted order, split into P contiguous runs of about equal bytes.

`read_shard` picks one: a pattern with ``*``, ``?`` or ``[`` is a glob.

Errors name the file and the line of the WHOLE file, as a single process
would: a byte shard's first line number is 1 + the newlines before it,
counted by reading those bytes without parsing them (`count_lines`), unless
the caller passes ``first_line`` (e.g. an exclusive sum of every process's
`count_lines` of its own range, gathered across processes).
"""

from __future__ import annotations

import array
import glob as glob_lib
import logging
import os
import pathlib
import re
from typing import NamedTuple

import numpy as np

from linjax.data import readers
from linjax.data.readers import DataError
from linjax.data.readers import Dataset

LINE_FORMATS = ('tsv', 'jsonl', 'fasttext')
_HEADER = ('tsv',)
_CHUNK = 1 << 22
_LINE_REF = re.compile(r'\bline (\d+)')


class ByteRange(NamedTuple):
  """Bytes ``start:end`` of a file: whole lines (start at a line start)."""

  start: int
  end: int


def _line_start_at_or_after(f, offset: int, size: int) -> int:
  """The first line start >= offset (``size`` if none)."""
  if offset <= 0:
    return 0
  if offset >= size:
    return size
  f.seek(offset - 1)
  while True:
    block = f.read(1 << 16)
    if not block:
      return size
    at = block.find(b'\n')
    if at >= 0:
      return f.tell() - len(block) + at + 1


def byte_range(path, index: int, count: int) -> ByteRange:
  """Part ``index`` of ``count`` of one file, aligned to whole lines."""
  if not 0 <= index < count:
    raise ValueError(f'shard index {index} must lie in [0, {count}).')
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    return ByteRange(_line_start_at_or_after(f, size * index // count, size),
                     _line_start_at_or_after(f, size * (index + 1) // count,
                                             size))


def count_lines(path, start: int, end: int) -> int:
  """Newlines in bytes ``start:end`` of ``path`` (read in 4 MiB blocks)."""
  total = 0
  with open(path, 'rb') as f:
    f.seek(start)
    left = end - start
    while left > 0:
      block = f.read(min(_CHUNK, left))
      if not block:
        break
      total += block.count(b'\n')
      left -= len(block)
  return total


class _Bytes(type(pathlib.Path())):
  """The real path (its name in messages and sources) over given bytes."""

  _data = b''

  def read_bytes(self):
    return self._data


def _renumber(data: Dataset, path: str, skip: int, offset: int) -> Dataset:
  """Sources ``path:v`` -> ``path:v + offset`` for v > ``skip`` (line v of
  the text the reader saw is that line of the file)."""
  sources = data.sources
  if isinstance(sources, readers.LineSources) and sources.path == path:
    lines = np.frombuffer(sources.lines, np.int64)
    shifted = array.array('q')
    shifted.frombytes(np.where(lines <= skip, lines, lines + offset).astype(
        np.int64).tobytes())
    return data._replace(sources=readers.LineSources(path, shifted))
  prefix = path + ':'

  def shift(v: int) -> int:
    return v if v <= skip else v + offset
  return data._replace(sources=[
      f'{prefix}{shift(int(s[len(prefix):]))}' if s.startswith(prefix)
      else s for s in sources])


class _ShiftLines(logging.Filter):
  """Rewrites 'line N' in the readers' lenient-mode warnings."""

  def __init__(self, shift):
    super().__init__()
    self.shift = shift

  def filter(self, record):
    if record.args:
      record.args = tuple(
          _LINE_REF.sub(lambda m: f'line {self.shift(int(m.group(1)))}', a)
          if isinstance(a, str) else a for a in record.args)
    return True


def read_byte_shard(path, fmt: str, index: int, count: int, *,
                    first_line: int | None = None, text_column: str = 'text',
                    label_column: str = 'label', lenient: bool = False,
                    multi: readers.LabelSets | None = None) -> Dataset:
  """The documents of part ``index`` of ``count`` of one file (`byte_range`).

  Args:
    path: a TSV (header line), JSONL or fastText file.
    fmt: 'tsv' | 'jsonl' | 'fasttext'.
    index, count: this process's part and the number of parts.
    first_line: the 1-based line number of the part's first line; None
      counts the newlines before it (reads, without parsing, those bytes).
    text_column, label_column, lenient, multi: as for `readers.read`.

  Returns:
    Dataset (empty if the part holds no line); sources and errors give the
    whole file's line numbers.
  """
  if fmt not in LINE_FORMATS:
    raise DataError(f'format {fmt!r} cannot be split by bytes.', path=path,
                    fix='split the corpus into files (one per process or '
                    'more) and give a glob, e.g. "train-*.csv".')
  start, end = byte_range(path, index, count)
  if start == end:
    return Dataset([], [], [])
  if first_line is None:
    first_line = 1 + count_lines(path, 0, start)
  with open(path, 'rb') as f:
    header = f.readline() if fmt in _HEADER and start > 0 else b''
    if header and not header.endswith(b'\n'):
      header += b'\n'
    f.seek(start)
    data = header + f.read(end - start)
  # Line v of the text the reader sees is line shift(v) of the file.
  skip = 1 if header else 0
  offset = first_line - 1 - skip

  def shift(v: int) -> int:
    return v if v <= skip else v + offset

  name = str(path)
  fake = _Bytes(name)
  fake._data = data  # pylint: disable=protected-access
  log_filter = _ShiftLines(shift)
  log = logging.getLogger(readers.__name__)
  log.addFilter(log_filter)
  try:
    dataset = readers.read(fake, fmt, text_column, label_column, lenient,
                           multi)
  except DataError as e:
    if e.line is None or e.path != name:
      raise
    prefix = f'{name}:{e.line}: '
    message = str(e)[len(prefix):] if str(e).startswith(prefix) else str(e)
    raise DataError(_LINE_REF.sub(
        lambda m: f'line {shift(int(m.group(1)))}', message), path=name,
                    line=shift(e.line)) from e
  finally:
    log.removeFilter(log_filter)
  return _renumber(dataset, name, skip, offset)


def shard_files(pattern: str, index: int, count: int) -> list[pathlib.Path]:
  """Part ``index`` of ``count`` of the files of a glob: a contiguous run of
  the sorted files, cut where the bytes before a file's middle cross
  ``total * i / count``. A part may be empty (fewer files than parts)."""
  if not 0 <= index < count:
    raise ValueError(f'shard index {index} must lie in [0, {count}).')
  files = sorted(pathlib.Path(p) for p in glob_lib.glob(
      os.path.expanduser(pattern)) if os.path.isfile(p))
  if not files:
    raise DataError('no file matches this pattern.', path=pattern,
                    fix='check the glob (quote it in the shell).')
  sizes = [f.stat().st_size for f in files]
  total = max(sum(sizes), 1)
  mine, before = [], 0
  for file, size in zip(files, sizes):
    part = min((2 * before + size) * count // (2 * total), count - 1)
    if part == index:
      mine.append(file)
    before += size
  return mine


def read_file_shard(pattern: str, fmt: str, index: int, count: int,
                    **kwargs) -> Dataset:
  """The documents of this part's files (`shard_files`), in sorted order.

  ``fmt`` is one format for every file (empty: by the first file's
  extension); ``kwargs`` as for `readers.read`.
  """
  files = shard_files(pattern, index, count)
  texts, labels, sources = [], [], []
  for file in files:
    data = readers.read(file, fmt or readers.infer_format(file), **kwargs)
    texts += data.texts
    labels += data.labels
    sources += data.sources
  return Dataset(texts, labels, sources)


def is_glob(pattern: str) -> bool:
  return any(c in str(pattern) for c in '*?[')


def read_shard(path: str, fmt: str, index: int, count: int, *,
               text_column: str = 'text', label_column: str = 'label',
               lenient: bool = False, multi: readers.LabelSets | None = None,
               first_line: int | None = None) -> Dataset:
  """Process ``index`` of ``count``'s part of ``path``: a glob's files, or a
  byte range of one file (see the module docstring)."""
  kwargs = dict(text_column=text_column, label_column=label_column,
                lenient=lenient, multi=multi)
  if is_glob(path):
    return read_file_shard(path, fmt, index, count, **kwargs)
  path = os.path.expanduser(str(path))
  if not os.path.isfile(path):
    raise DataError('no such file.', path=path,
                    fix='give one file, or a glob of several.')
  return read_byte_shard(path, fmt or readers.infer_format(path), index,
                         count, first_line=first_line, **kwargs)
