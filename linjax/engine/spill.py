"""Out-of-core training: packed steps on disk, read back K steps at a time.

Shapes: G steps, S_l sub-batches per step on this process, T slots, D
documents, U rows per sub-batch.

When a run's packed steps would exceed its host-memory budget
(``TrainOptions.max_host_mb``; 0: a quarter of the memory available), the
engine packs them chunk by chunk (`packing.pack_chunks`,
`step_split.pack_split_chunks`) and `spill_steps` appends each chunk to one
raw file per array ([G, S_l, ...], row-major, so a step is one contiguous
record) in a temporary folder. `SpilledSteps.batches` maps the files; the
epoch gathers the K steps of each call in the seeded order from the maps
(`chunk_program.gather_steps`), then `release` drops the pages it touched
from the process, so the resident memory stays at about one chunk whatever
the corpus size (the operating system's page cache keeps the files warm
when memory allows). The steps are the same numbers as in memory, so the
spilled run trains the same model bit for bit.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import tempfile
import weakref

import numpy as np

from linjax.engine import packing

MANIFEST = 'steps.json'
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
  costs 12 bytes (row, weight, document; +4 with de-duplicated rows, +4 for
  the row list), a document 16 (label, mask, index; a multi-hot label
  ``label_width`` bytes).
  """
  steps = max(-(-int(nnz) // max(int(token_budget), 1)),
              -(-int(num_docs) // max(int(max_docs), 1)), 1)
  per_slot = 12 + (8 if dedupe else 0)
  per_doc = 4 + 8 + max(4, int(label_width))
  return steps * (token_budget * per_slot + max_docs * per_doc)


def _write_raw(f, a: np.ndarray) -> None:
  f.write(np.ascontiguousarray(a).data)


def spill_steps(chunks, folder: str | None = None,
                row_width: int | None = None) -> SpilledSteps:
  """Writes chunks of packed steps to ``folder``; the steps on disk.

  Args:
    chunks: iterable of PackedBatches [k, S_l, ...] (consecutive steps), or
      of (PackedBatches, width) pairs as `packing.pack_chunks` yields.
    folder: where to write (created); None: a new temporary folder, removed
      when the returned object is garbage collected.
    row_width: U of the row lists ``uids`` (the first U columns are read);
      None: the widest pair's width with (batches, width) chunks, else all.

  Returns:
    SpilledSteps.
  """
  owned = folder is None
  folder = tempfile.mkdtemp(prefix='linjax-steps-') if owned else folder
  os.makedirs(folder, exist_ok=True)
  files, meta, steps, widths = {}, {}, 0, []
  try:
    for chunk in chunks:
      if isinstance(chunk, tuple) and not isinstance(chunk,
                                                     packing.PackedBatches):
        chunk, width = chunk
        widths.append(int(width))
      for name in _FIELDS:
        a = getattr(chunk, name)
        if a is None:
          continue
        if name not in files:
          files[name] = open(os.path.join(folder, name + '.bin'), 'wb')
          meta[name] = dict(dtype=a.dtype.str, step_shape=list(a.shape[1:]))
        _write_raw(files[name], a)
      steps += int(chunk.weights.shape[0])
  finally:
    for f in files.values():
      f.close()
  if row_width is None and widths:
    row_width = max(widths)
  manifest = dict(num_steps=steps, fields=meta, row_width=row_width)
  with open(os.path.join(folder, MANIFEST), 'w') as f:
    json.dump(manifest, f)
  return SpilledSteps(folder, owned=owned)


class SpilledSteps:
  """Packed steps in a folder (see module docstring), read through maps."""

  def __init__(self, folder: str, owned: bool = False):
    self.folder = folder
    with open(os.path.join(folder, MANIFEST)) as f:
      self.manifest = json.load(f)
    self._maps = []
    arrays = {}
    for name, meta in self.manifest['fields'].items():
      with open(os.path.join(folder, name + '.bin'), 'rb') as f:
        view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
      self._maps.append(view)
      shape = (self.manifest['num_steps'],) + tuple(meta['step_shape'])
      arrays[name] = np.frombuffer(view, np.dtype(meta['dtype'])).reshape(
          shape)
    width = self.manifest.get('row_width')
    if width is not None:
      arrays['uids'] = arrays['uids'][..., :width]
    arrays.setdefault('slot', None)
    self.batches = packing.PackedBatches(doc_index=None, **arrays)
    if owned:
      self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)

  @property
  def num_steps(self) -> int:
    return int(self.manifest['num_steps'])

  @property
  def nbytes(self) -> int:
    return sum(m.size() for m in self._maps)

  def release(self) -> None:
    """Drops the pages read so far from this process (not from the disk
    cache): resident memory goes back to what it was before the reads."""
    for view in self._maps:
      if hasattr(view, 'madvise'):
        view.madvise(mmap.MADV_DONTNEED)
