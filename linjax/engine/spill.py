"""Out-of-core training: packed steps on disk, read back K steps at a time.

Shapes: G steps, S_l sub-batches per step on this process, T slots, D
documents, U rows per sub-batch; K steps per call of the compiled program.

When a run's packed steps would exceed its host-memory budget
(``TrainOptions.max_host_mb``; 0: a quarter of the memory available), the
engine packs them chunk by chunk (`packing.pack_chunks`,
`step_split.pack_split_chunks`) and `spill_steps` appends each chunk to one
file of fixed-size records, a step's arrays one after another, in a
temporary folder. Each call of an epoch then reads its K steps, in the
seeded order, with one ``pread`` per step (`SpilledSteps.gather`), so the
process holds about one call's steps whatever the corpus size; the
operating system's page cache keeps the file warm when memory allows, and
does not count as the process's memory. (Memory maps do: a random read of a
few steps maps whole large folios of the file, so the resident set grows to
the file's size.) The steps are the same numbers as in memory, so the
spilled run trains the same model bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref

import jax
import numpy as np

from linjax.engine import packing

MANIFEST = 'steps.json'
RECORDS = 'steps.bin'
_FIELDS = ('uids', 'slot', 'weights', 'seg', 'labels', 'mask', 'slot_pos',
           'doc_pos')


def available_bytes() -> int:
  """Memory the system can give this process now (Linux MemAvailable)."""
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
  except (ValueError, OSError, AttributeError):
    return 8 << 30


def budget_bytes(max_host_mb: int) -> int:
  """The packed steps' budget: ``max_host_mb`` MiB, or (0) a quarter of the
  memory available now."""
  if max_host_mb > 0:
    return int(max_host_mb) << 20
  return available_bytes() // 4


def estimate_bytes(num_docs: int, nnz: int, token_budget: int, max_docs: int,
                   dedupe: bool, label_width: int = 1) -> int:
  """About how many bytes a run's packed steps take in memory.

  Steps: at least ``nnz / T`` (slots) and ``N / D`` (documents). A slot
  costs 12 bytes (row, weight, document; +8 with de-duplicated rows or a
  split step's positions), a document 16 (label, mask, index; a multi-hot
  label ``label_width`` bytes).
  """
  steps = max(-(-int(nnz) // max(int(token_budget), 1)),
              -(-int(num_docs) // max(int(max_docs), 1)), 1)
  per_slot = 12 + (8 if dedupe else 0)
  per_doc = 4 + 8 + max(4, int(label_width))
  return steps * (token_budget * per_slot + max_docs * per_doc)


def spill_steps(chunks, folder: str | None = None) -> SpilledSteps:
  """Writes chunks of packed steps to ``folder``; the steps on disk.

  Args:
    chunks: iterable of PackedBatches [k, S_l, ...] (consecutive steps), or
      of (PackedBatches, width) pairs as `packing.pack_chunks` yields: then
      only the first ``max(width)`` columns of ``uids`` are read back.
    folder: where to write (created); None: a new temporary folder, removed
      when the returned object is garbage collected.

  Returns:
    SpilledSteps.
  """
  owned = folder is None
  folder = tempfile.mkdtemp(prefix='linjax-steps-') if owned else folder
  os.makedirs(folder, exist_ok=True)
  fields, steps, widths = None, 0, []
  with open(os.path.join(folder, RECORDS), 'wb') as f:
    for chunk in chunks:
      if not isinstance(chunk, packing.PackedBatches):
        chunk, width = chunk
        widths.append(int(width))
      arrays = [(name, getattr(chunk, name)) for name in _FIELDS
                if getattr(chunk, name) is not None]
      if fields is None:
        fields = [dict(name=name, dtype=a.dtype.str,
                       step_shape=list(a.shape[1:])) for name, a in arrays]
      k = arrays[0][1].shape[0]
      records = np.concatenate(
          [np.ascontiguousarray(a).reshape(k, -1).view(np.uint8)
           for _, a in arrays], axis=1)
      f.write(records.data)
      steps += k
  manifest = dict(num_steps=steps, fields=fields,
                  row_width=max(widths) if widths else None)
  with open(os.path.join(folder, MANIFEST), 'w') as f:
    json.dump(manifest, f)
  return SpilledSteps(folder, owned=owned)


class SpilledSteps:
  """Packed steps in a folder (see module docstring), read a call at a time.

  ``batches`` describes them (a PackedBatches of ShapeDtypeStructs [G, ...],
  no data): what the engine needs to compile for them.
  """

  def __init__(self, folder: str, owned: bool = False):
    self.folder = folder
    with open(os.path.join(folder, MANIFEST)) as f:
      self.manifest = json.load(f)
    self._layout, offset = [], 0
    for meta in self.manifest['fields']:
      dtype = np.dtype(meta['dtype'])
      shape = tuple(meta['step_shape'])
      size = int(np.prod(shape)) * dtype.itemsize
      self._layout.append((meta['name'], dtype, shape, offset, size))
      offset += size
    self.record_bytes = offset
    self._file = open(os.path.join(folder, RECORDS), 'rb')  # pylint: disable=consider-using-with
    self._closer = weakref.finalize(self, self._file.close)
    if owned:
      self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)
    width = self.manifest.get('row_width')
    described = {}
    for name, dtype, shape, _, _ in self._layout:
      if name == 'uids' and width is not None:
        shape = shape[:-1] + (width,)
      described[name] = jax.ShapeDtypeStruct((self.num_steps,) + shape, dtype)
    described.setdefault('slot', None)
    self.batches = packing.PackedBatches(doc_index=None, **described)

  @property
  def num_steps(self) -> int:
    return int(self.manifest['num_steps'])

  @property
  def nbytes(self) -> int:
    return self.num_steps * self.record_bytes

  def gather(self, idx, chunk_steps: int, num_features: int):
    """Host arrays [K, ...] of the steps ``idx`` (<= K), read from disk.

    As `chunk_program.gather_steps`: the tail past ``len(idx)`` holds empty
    steps (rows F, no documents).
    """
    idx = np.asarray(idx, np.int64)
    n = idx.shape[0]
    records = np.empty((chunk_steps, self.record_bytes), np.uint8)
    fd, size = self._file.fileno(), self.record_bytes
    for row, step in enumerate(idx.tolist()):
      if os.preadv(fd, [records[row]], step * size) != size:
        raise OSError(f'{self.folder}: step {step} is cut short; the '
                      'spilled steps were changed or removed during the run.')
    width = self.manifest.get('row_width')
    fills = packing.pad_values(num_features, self.batches.mask.shape[-1])
    out = {}
    for name, dtype, shape, offset, nbytes in self._layout:
      a = records[:, offset:offset + nbytes].copy().view(dtype).reshape(
          (chunk_steps,) + shape)
      a[n:] = fills[name]
      if name == 'uids' and width is not None:
        a = a[..., :width]
      out[name] = a
    out.setdefault('slot', None)
    return packing.PackedBatches(doc_index=None, **out)
