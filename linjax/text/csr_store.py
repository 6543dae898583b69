"""A `CsrFeatures` corpus on disk: documents appended chunk by chunk.

Shapes: N documents, F features, nnz stored entries in all.

A corpus too large for the host's memory is featurised a chunk of documents
at a time and each chunk appended to a `CsrStore`: its ids (int32) and
weights (float32) go to two files, and only the row offsets (int64 [N + 1])
stay in memory. The store answers what the engine asks of a corpus --
``num_docs``, ``nnz``, ``num_features``, ``row_lengths()``, ``validate()``,
``take(rows)`` -- reading from disk with ``pread`` (no memory maps: a map's
resident set grows to the file, linjax/engine/spill.py). Reads of
contiguous rows (scoring, `chunks`) cost what they read; random rows in
bulk go through `take_chunks`, an external distribution pass: the store is
read once in order and each row is appended to a temporary file in blocks
by the output chunk it belongs to, so each output chunk is then one read of
its blocks. The host holds about one input chunk and one output chunk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import numpy as np

from linjax.text import csr

_IDS = 'ids.bin'
_WEIGHTS = 'weights.bin'


def _pread(fd: int, dtype, first: int, count: int) -> np.ndarray:
  """``count`` items of ``dtype`` from item ``first`` of file ``fd``."""
  dtype = np.dtype(dtype)
  out = np.empty(int(count), dtype)
  if count:
    got = os.preadv(fd, [out.view(np.uint8)], int(first) * dtype.itemsize)
    if got != out.nbytes:
      raise OSError(f'fd {fd}: short read ({got} of {out.nbytes} bytes); '
                    'the store was changed or removed during the run.')
  return out


class CsrStore:
  """Documents' features on disk (see module docstring).

  Build with `append` (CsrFeatures chunks, in order), then read. ``folder``
  None: a new temporary folder (under ``parent`` if given), removed when
  the store is garbage collected or `close`d.
  """

  def __init__(self, num_features: int, folder: str | None = None,
               parent: str | None = None):
    self.num_features = int(num_features)
    self._owned = folder is None
    self.folder = (tempfile.mkdtemp(prefix='linjax-csr-', dir=parent)
                   if folder is None else folder)
    os.makedirs(self.folder, exist_ok=True)
    self._ids = open(os.path.join(self.folder, _IDS), 'w+b')  # pylint: disable=consider-using-with
    self._weights = open(os.path.join(self.folder, _WEIGHTS), 'w+b')  # pylint: disable=consider-using-with
    self._offsets = [np.zeros(1, np.int64)]
    self._indptr = None
    self._nnz = 0
    self._finalizer = weakref.finalize(
        self, CsrStore._release, self._ids, self._weights,
        self.folder if self._owned else None)

  @staticmethod
  def _release(ids_file, weights_file, folder):
    ids_file.close()
    weights_file.close()
    if folder is not None:
      shutil.rmtree(folder, ignore_errors=True)

  def close(self) -> None:
    """Closes the files (and removes an owned folder) now."""
    self._finalizer()

  # -- building ------------------------------------------------------------

  def append(self, x: csr.CsrFeatures) -> None:
    """Appends the documents of ``x`` (same F) after those stored."""
    if x.num_features != self.num_features:
      raise ValueError(f'CsrStore.append: F={x.num_features}, the store has '
                       f'F={self.num_features}.')
    x.validate('CsrStore.append')
    self._ids.seek(self._nnz * 4)
    self._ids.write(np.ascontiguousarray(x.ids, np.int32).data)
    self._weights.seek(self._nnz * 4)
    self._weights.write(np.ascontiguousarray(x.weights, np.float32).data)
    self._offsets.append(x.indptr[1:] + self._nnz)
    self._nnz += x.nnz
    self._indptr = None

  @property
  def indptr(self) -> np.ndarray:
    """int64 [N + 1] row offsets (in memory)."""
    if self._indptr is None:
      self._ids.flush()
      self._weights.flush()
      self._indptr = np.concatenate(self._offsets)
      self._offsets = [self._indptr]
    return self._indptr

  # -- what a CsrFeatures answers --------------------------------------------

  @property
  def num_docs(self) -> int:
    return int(self.indptr.shape[0] - 1)

  @property
  def nnz(self) -> int:
    return int(self._nnz)

  def row_lengths(self) -> np.ndarray:
    """int64 [N]: number of stored entries of each document."""
    return np.diff(self.indptr)

  def validate(self, name: str = 'features') -> None:
    """The rows were validated as they were appended; checks the offsets."""
    if self.indptr[-1] != self._nnz:
      raise ValueError(f'{name}: the store holds {self._nnz} entries but its '
                       f'offsets end at {self.indptr[-1]}.')

  def span(self, lo: int, hi: int) -> csr.CsrFeatures:
    """Documents ``lo:hi`` as CsrFeatures (one read of each file)."""
    indptr = self.indptr
    first, last = int(indptr[lo]), int(indptr[hi])
    return csr.CsrFeatures(
        indptr[lo:hi + 1] - first,
        _pread(self._ids.fileno(), np.int32, first, last - first),
        _pread(self._weights.fileno(), np.float32, first, last - first),
        self.num_features)

  def take(self, rows) -> csr.CsrFeatures:
    """The documents ``rows`` (int [M]), in that order, as CsrFeatures.

    Reads the span from the smallest to the largest row: meant for
    contiguous or nearby rows (scoring in chunks); `take_chunks` for many
    scattered ones.
    """
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
      return csr.CsrFeatures(np.zeros(1, np.int64), np.zeros(0, np.int32),
                             np.zeros(0, np.float32), self.num_features)
    lo, hi = int(rows.min()), int(rows.max()) + 1
    part = self.span(lo, hi)
    if rows.shape[0] == hi - lo and np.array_equal(rows, np.arange(lo, hi)):
      return part
    return part.take(rows - lo)

  def chunks(self, max_entries: int = 1 << 22):
    """Yields (first row, CsrFeatures) of consecutive rows, in order, each
    of at most ``max_entries`` entries (or one row)."""
    indptr = self.indptr
    lo, n = 0, self.num_docs
    while lo < n:
      hi = int(np.searchsorted(indptr, indptr[lo] + max_entries, 'right')) - 1
      hi = min(max(hi, lo + 1), n)
      yield lo, self.span(lo, hi)
      lo = hi

  def take_chunks(self, rows, bounds, read_entries: int = 1 << 22,
                  folder: str | None = None):
    """Yields ``self.take(rows[bounds[i]:bounds[i + 1]])`` for each i.

    An external distribution pass (module docstring): ``rows`` (int [M],
    any rows, repeats allowed) may be scattered over the whole store.

    Args:
      rows: int [M] row indices.
      bounds: int [B + 1] increasing cut points into ``rows``, from 0 to M.
      read_entries: entries read from the store at a time.
      folder: where the temporary blocks go (default: the store's folder).
    """
    rows = np.asarray(rows, np.int64)
    bounds = np.asarray(bounds, np.int64)
    by_row = np.argsort(rows, kind='stable')   # positions, by row
    sorted_rows = rows[by_row]
    blocks = [[] for _ in range(bounds.shape[0] - 1)]
    fd, path = tempfile.mkstemp(prefix='take-', dir=folder or self.folder)
    try:
      with os.fdopen(fd, 'w+b') as f:
        offset = 0
        for lo, part in self.chunks(read_entries):
          hi = lo + part.num_docs
          a, b = np.searchsorted(sorted_rows, [lo, hi])
          if a == b:
            continue
          positions = by_row[a:b]
          picked = part.take(sorted_rows[a:b] - lo)
          chunk_of = np.searchsorted(bounds, positions, 'right') - 1
          order = np.argsort(chunk_of, kind='stable')
          picked, positions = picked.take(order), positions[order]
          doc_cuts = np.searchsorted(chunk_of[order],
                                     np.arange(bounds.shape[0]))
          for c in np.flatnonzero(np.diff(doc_cuts)).tolist():
            d0, d1 = int(doc_cuts[c]), int(doc_cuts[c + 1])
            e0, e1 = int(picked.indptr[d0]), int(picked.indptr[d1])
            arrays = (positions[d0:d1], np.diff(picked.indptr[d0:d1 + 1]),
                      picked.ids[e0:e1], picked.weights[e0:e1])
            for a in arrays:
              f.write(np.ascontiguousarray(a).data)
            blocks[c].append((offset, d1 - d0, e1 - e0))
            offset += sum(a.nbytes for a in arrays)
        f.flush()
        for c, chunk_blocks in enumerate(blocks):
          yield self._assemble(f.fileno(), chunk_blocks, int(bounds[c]),
                               int(bounds[c + 1]))
    finally:
      if os.path.exists(path):
        os.remove(path)

  def _assemble(self, fd: int, chunk_blocks, lo: int,
                hi: int) -> csr.CsrFeatures:
    """The rows of positions ``lo:hi`` from their blocks, in position order."""
    positions, lengths, ids, weights = [], [], [], []
    for offset, docs, entries in chunk_blocks:
      raw = _pread(fd, np.uint8, offset, docs * 16 + entries * 8)
      positions.append(raw[:docs * 8].view(np.int64))
      lengths.append(raw[docs * 8:docs * 16].view(np.int64))
      ids.append(raw[docs * 16:docs * 16 + entries * 4].view(np.int32))
      weights.append(raw[docs * 16 + entries * 4:].view(np.float32))
    n = hi - lo
    if not positions:
      return csr.CsrFeatures(np.zeros(n + 1, np.int64), np.zeros(0, np.int32),
                             np.zeros(0, np.float32), self.num_features)
    lengths = np.concatenate(lengths)
    indptr = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    arrived = csr.CsrFeatures(indptr, np.concatenate(ids),
                              np.concatenate(weights), self.num_features)
    where = np.empty(n, np.int64)
    where[np.concatenate(positions) - lo] = np.arange(n)
    return arrived.take(where)
