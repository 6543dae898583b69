"""The checks `load` makes on each file of a saved model directory.

Separate from linjax/saved_model.py, which writes a model and assembles a
loaded one: each function here reads one piece (the manifest and its format
version, a version 2 ``.npy`` array, the version 3 safetensors file, W from
its stored rows), verifies it against model.json (size, SHA-256, dtype,
shape) and raises `ModelFileError` with one line naming the file and what
is wrong. The format's file names and the versions it reads are here, so
that both modules share them.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np

from linjax import compact_model
from linjax import tensor_file
from linjax.model_digest import ModelFileError

FORMAT = 'linjax.saved_model'
READS = (2, 3, 4)   # versions `load` reads
MANIFEST = 'model.json'
ARRAY_FILE = 'arrays.safetensors'
_REQUIRED = {1: ('arrays', 'labels', 'featurizer'),
             2: ('arrays', 'labels', 'featurizer', 'loss', 'digest'),
             3: ('arrays', 'weights', 'labels', 'featurizer', 'loss',
                 'digest')}
_REQUIRED[4] = _REQUIRED[3]  # 4 adds the featurizer's settings.hash
_NPY_ARRAYS = ('W', 'b')  # versions 1 and 2


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def read_manifest(path: pathlib.Path, versions=READS) -> dict:
  """The checked manifest of the model directory ``path``, a dict."""
  file = path / MANIFEST
  if not path.is_dir():
    raise ModelFileError(f'{path}: no saved model here (not a directory)')
  if not file.is_file():
    raise ModelFileError(f'{file}: missing; {path} is not a saved model')
  try:
    with open(file, encoding='utf-8') as f:
      manifest = json.load(f)
  except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
    # RecursionError: JSON nested deeper than Python's parser goes.
    raise ModelFileError(f'{file}: not valid JSON (truncated or altered?): '
                         f'{e}') from None
  if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
    raise ModelFileError(f'{file}: not a linjax saved model (format is '
                         f'{manifest.get("format") if isinstance(manifest, dict) else None!r}, '
                         f'expected {FORMAT!r})')
  found = manifest.get('format_version')
  if found == 1 and 1 not in versions:
    raise ModelFileError(
        f'{file}: format version 1 has no integrity digest (saved by an older '
        f'linjax); retrain, or if you trust it run once: python -c "from '
        f'linjax import saved_model; saved_model.upgrade(\'{path}\')"')
  if found not in versions:
    *most, last = (str(v) for v in versions)
    reads = (f'versions {", ".join(most)} and {last}' if most
             else f'version {last}')
    raise ModelFileError(f'{file}: unsupported format version {found!r}; '
                         f'this linjax reads {reads}' +
                         (' (a newer linjax saved it: upgrade linjax)'
                          if isinstance(found, int) and found > max(READS)
                          else ''))
  for key in _REQUIRED[found]:
    if key not in manifest:
      raise ModelFileError(f'{file}: missing key {key!r}')
  return manifest


def _file_entry(path: pathlib.Path, name: str, entry) -> pathlib.Path:
  """The checked array file of a manifest entry (size and SHA-256)."""
  if not isinstance(entry, dict):
    raise ModelFileError(f'{path / MANIFEST}: bad entry for array {name!r}')
  file = path / str(entry.get('file', ''))
  if not entry.get('file') or file.parent != path:
    raise ModelFileError(f'{path / MANIFEST}: bad file entry for array '
                         f'{name!r}')
  if not file.is_file():
    raise ModelFileError(f'{file}: missing')
  size = file.stat().st_size
  if size != entry.get('bytes'):
    raise ModelFileError(f'{file}: truncated or altered: {size} bytes, '
                         f'expected {entry.get("bytes")}')
  return file


def _checksum(file: pathlib.Path, found: str, want) -> None:
  if found != want:
    raise ModelFileError(f'{file}: checksum mismatch (SHA-256 {found[:12]}..., '
                         f'expected {str(want)[:12]}...)')


def _load_npy(path: pathlib.Path, name: str, entry) -> np.ndarray:
  """One array of a version 1 or 2 model (a .npy file)."""
  file = _file_entry(path, name, entry)
  _checksum(file, _sha256(file), entry.get('sha256'))
  try:
    array = np.load(file, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise ModelFileError(f'{file}: unreadable array: {e}') from None
  if list(array.shape) != list(entry.get('shape', [])):
    raise ModelFileError(f'{file}: wrong shape {list(array.shape)}, '
                         f'expected {entry.get("shape")}')
  if str(array.dtype) != entry.get('dtype'):
    raise ModelFileError(f'{file}: wrong dtype {array.dtype}, expected '
                         f'{entry.get("dtype")}')
  return array


def load_npy_arrays(path: pathlib.Path, manifest: dict) -> dict:
  """W and b of a version 1 or 2 model, checked: {name: array}."""
  entries = manifest['arrays']
  arrays = {}
  for name in _NPY_ARRAYS:
    if not isinstance(entries, dict) or name not in entries:
      raise ModelFileError(f'{path / MANIFEST}: no entry for array {name!r}')
    arrays[name] = _load_npy(path, name, entries[name])
  return arrays


def load_tensor_file(path: pathlib.Path, manifest: dict) -> dict:
  """The arrays of a version 3 model, checked against the manifest."""
  entry = manifest['arrays']
  file = _file_entry(path, ARRAY_FILE, entry)
  raw = file.read_bytes()
  _checksum(file, hashlib.sha256(raw).hexdigest(), entry.get('sha256'))
  try:
    arrays, _ = tensor_file.decode(raw, str(file))
  except tensor_file.TensorFileError as e:
    raise ModelFileError(str(e)) from None
  listed = entry.get('tensors')
  if not isinstance(listed, dict):
    raise ModelFileError(f'{path / MANIFEST}: bad tensors entry for '
                         f'{ARRAY_FILE}')
  found = {k: dict(dtype=str(v.dtype), shape=list(v.shape))
           for k, v in arrays.items()}
  if found != listed:
    names = sorted(set(found) ^ set(listed)) or sorted(
        k for k in found if found[k] != listed[k])
    raise ModelFileError(f'{file}: its arrays do not match model.json\'s '
                         f'list (first difference: {names[0]!r})')
  return arrays


def dense_weights(file: pathlib.Path, manifest: dict,
                  arrays: dict) -> np.ndarray:
  """W [F, C] float32 of a version 3 model."""
  entry = manifest['weights']
  try:
    shape = [int(d) for d in entry['shape']]
    precision, int8_scale = entry['precision'], entry['int8_scale']
    if precision != 'int8' and int8_scale is None:
      int8_scale = 'row'  # unused
    compact_model.check_precision(precision, int8_scale)
    if len(shape) != 2 or entry['rows'] != arrays['W.row_ids'].shape[0]:
      raise ValueError(f'shape {shape} / rows {entry["rows"]} do not fit')
    return compact_model.expand_weights(arrays, shape, precision, int8_scale)
  except (KeyError, TypeError, ValueError) as e:
    raise ModelFileError(f'{file}: bad weights: {e}') from None
