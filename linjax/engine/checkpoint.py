"""Crash-safe training checkpoints: atomic, checksummed, no pickle.

A checkpoint of epoch k in directory D is two files:

  D/ckpt_00000k.npz   the arrays (numpy .npz, loaded with allow_pickle=False)
  D/ckpt_00000k.json  metadata (JSON) with the sha256 and size of the .npz

Each file is written to a temporary name in D, flushed and fsync'ed, then
renamed over its final name (atomic on POSIX), the .npz first. The .json is
the commit record: a checkpoint exists only once its .json does, so a crash
at any moment leaves either the previous checkpoints or the new one, never a
half-written one. Loading recomputes the sha256 and raises `CheckpointError`
naming the file when the bytes differ (truncated or altered). Older
checkpoints beyond ``keep`` are deleted after a successful save (``keep``
defaults to 2, or to the value of an enclosing `retaining(n)` block, so that
a runner can bound what `linjax.engine.training.fit` leaves on disk), and so
are leftovers of an interrupted save or prune. `remove` deletes them all.

Why not orbax-checkpoint (measured here, 2 cores, W of 2**20 x 16 float32):
import 0.24 s, StandardCheckpointer save 0.30 s and restore 0.26 s, against
0.18-0.29 s for this module's npz + sha256 + rename. Orbax is atomic too, but
it keeps no content checksum, so "checked on load" would need a second
hashing pass over its files anyway, and its import alone costs about half of
the training time this engine targets (0.6 s). A 100-line module with the
same guarantees and no extra dependency won.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile

import numpy as np

_NAME = re.compile(r'^ckpt_(\d{6,})\.json$')
_ARRAYS = re.compile(r'^ckpt_(\d{6,})\.npz$')
_TMP_PREFIX = '.tmp-'
FORMAT = 'linjax-checkpoint-1'
DEFAULT_KEEP = 2
_keep = [DEFAULT_KEEP]


class CheckpointError(ValueError):
  """A checkpoint file is missing, truncated, altered or of another run."""


def _paths(directory: str, epoch: int):
  stem = os.path.join(directory, f'ckpt_{epoch:06d}')
  return stem + '.npz', stem + '.json'


def _atomic_write(path: str, data: bytes) -> None:
  directory = os.path.dirname(path) or '.'
  fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=directory)
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  try:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)
  except OSError:
    pass


def epochs(directory: str) -> list[int]:
  """Epochs with a committed checkpoint in ``directory``, ascending."""
  if not os.path.isdir(directory):
    return []
  found = (_NAME.match(name) for name in os.listdir(directory))
  return sorted(int(m.group(1)) for m in found if m)


def latest_epoch(directory: str) -> int | None:
  """The newest committed checkpoint's epoch, or None."""
  found = epochs(directory)
  return found[-1] if found else None


@contextlib.contextmanager
def retaining(keep: int):
  """Within the block, `save` keeps ``keep`` (>= 1) checkpoints by default."""
  if int(keep) < 1:
    raise ValueError(f'retaining: keep must be >= 1, got {keep}')
  _keep.append(int(keep))
  try:
    yield
  finally:
    _keep.pop()


def save(directory: str, epoch: int, arrays: dict, meta: dict,
         keep: int | None = None) -> str:
  """Writes checkpoint ``epoch`` atomically; returns the .json path.

  Args:
    directory: created if missing.
    epoch: number of completed epochs (names the files).
    arrays: name -> numpy array (numeric dtypes; no objects).
    meta: JSON-serialisable metadata.
    keep: how many newest checkpoints to keep (>= 1); None: 2, or the value
      of the enclosing `retaining` block.

  Raises:
    ValueError: an array of objects (it would need pickle); nothing is written.
  """
  arrays = {k: np.asarray(v) for k, v in arrays.items()}
  for name, array in arrays.items():
    if array.dtype.hasobject:
      raise ValueError(f'checkpoint.save: array {name!r} holds Python objects '
                       f'(dtype {array.dtype}); checkpoints store numeric '
                       'arrays only, never pickles.')
  os.makedirs(directory, exist_ok=True)
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  data = buffer.getvalue()
  npz_path, json_path = _paths(directory, epoch)
  _atomic_write(npz_path, data)
  record = dict(format=FORMAT, epoch=int(epoch),
                sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
                meta=meta)
  _atomic_write(json_path, json.dumps(record).encode('utf-8'))
  prune(directory, _keep[-1] if keep is None else keep)
  return json_path


def _remove(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


def prune(directory: str, keep: int) -> None:
  """Keeps the ``keep`` (>= 1) newest committed checkpoints in ``directory``.

  Also deletes what an interrupted save or prune left behind: temporary
  files, and .npz files without a .json older than the newest checkpoint.
  Each record (.json) goes before its arrays, so that a checkpoint is
  never listed without them.
  """
  found = epochs(directory)
  for old in found[:-max(int(keep), 1)]:
    for path in _paths(directory, old)[::-1]:
      _remove(path)
  committed = set(found)
  for name in os.listdir(directory):
    orphan = _ARRAYS.match(name)
    if name.startswith(_TMP_PREFIX) or (
        orphan and int(orphan.group(1)) not in committed and found and
        int(orphan.group(1)) < found[-1]):
      _remove(os.path.join(directory, name))


def remove(directory: str) -> int:
  """Deletes every checkpoint in ``directory`` (newest last), and the
  directory itself if nothing else is left in it; returns the bytes freed."""
  if not os.path.isdir(directory):
    return 0
  freed = 0
  for epoch in epochs(directory):
    for path in _paths(directory, epoch)[::-1]:
      if os.path.exists(path):
        freed += os.path.getsize(path)
        _remove(path)
  for name in os.listdir(directory):
    if name.startswith(_TMP_PREFIX) or _ARRAYS.match(name):
      path = os.path.join(directory, name)
      freed += os.path.getsize(path)
      _remove(path)
  if not os.listdir(directory):
    os.rmdir(directory)
  return freed


def load(directory: str, epoch: int | None = None):
  """Reads and verifies a checkpoint (default: the latest).

  Returns:
    (epoch, arrays: dict name -> numpy array, meta: dict).

  Raises:
    CheckpointError: no checkpoint, a bad record, or a checksum mismatch.
  """
  if epoch is None:
    epoch = latest_epoch(directory)
    if epoch is None:
      raise CheckpointError(f'no checkpoint in {directory}.')
  npz_path, json_path = _paths(directory, epoch)
  try:
    with open(json_path, 'rb') as f:
      record = json.loads(f.read().decode('utf-8'))
    if record.get('format') != FORMAT:
      raise ValueError(f'format {record.get("format")!r}')
  except (OSError, ValueError) as e:
    raise CheckpointError(f'{json_path}: unreadable checkpoint record '
                          f'({e}).') from None
  try:
    with open(npz_path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise CheckpointError(f'{npz_path}: cannot read ({e}).') from None
  if (len(data) != record['bytes'] or
      hashlib.sha256(data).hexdigest() != record['sha256']):
    raise CheckpointError(
        f'{npz_path}: checksum mismatch ({len(data)} bytes, expected '
        f'{record["bytes"]}); the file is truncated or altered. Delete '
        f'{json_path} to fall back to an older checkpoint.')
  try:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except (ValueError, OSError, EOFError) as e:  # e.g. a pickled object array
    raise CheckpointError(f'{npz_path}: unreadable arrays ({e}).') from None
  return int(record['epoch']), arrays, record['meta']
