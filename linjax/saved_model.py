"""A trained model on disk: plain arrays plus a checksummed JSON manifest.

Layout of a saved model directory (no pickle anywhere)::

  model/
    model.json   manifest (UTF-8 JSON, see below)
    W.npy        float32 [F, C] class templates (`np.save`, allow_pickle=False)
    b.npy        float32 [C] biases

``model.json`` holds::

  format: "linjax.saved_model"      format_version: 1
  linjax_version: "0.1.0"           created: ISO-8601 UTC time
  arrays: {"W": {"file": "W.npy", "shape": [F, C], "dtype": "float32",
                 "bytes": n, "sha256": "..."}, "b": {...}}
  labels: [C class names]           featurizer: Featurizer.to_dict()
  config: the run's config as a dict          extra: caller's JSON (results)

`load` verifies all of it (presence, size, SHA-256, shape, dtype, the format
version, agreement of F and C with the featurizer and labels) and raises
`ModelFileError` naming the file and the problem. `save` writes into a
temporary sibling directory and renames it into place, so a crash leaves
either the old model or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

import numpy as np

FORMAT = 'linjax.saved_model'
FORMAT_VERSION = 1
MANIFEST = 'model.json'
_ARRAYS = ('W', 'b')


class ModelFileError(ValueError):
  """A saved model is missing, truncated, altered or of an unknown format."""


@dataclasses.dataclass
class SavedModel:
  """A loaded model: what `predict`-style callers need.

  params: `linjax.Params` of float32 numpy arrays, W [F, C] and b [C].
  featurizer: the fitted `linjax.text.Featurizer`.
  label_map: `linjax.data.LabelMap` with C names.
  config: the training config as a plain dict.
  meta: the whole manifest (versions, shapes, checksums, extra).
  """

  params: Any
  featurizer: Any
  label_map: Any
  config: dict
  meta: dict

  def predict_proba(self, texts) -> np.ndarray:
    """float32 [N, C] class probabilities of raw ``texts`` (N strings)."""
    from linjax.engine import training as train  # pylint: disable=g-import-not-at-top
    return np.asarray(train.predict_proba(self.params,
                                          self.featurizer.transform(texts)))

  def predict(self, texts) -> list[str]:
    """The most probable label name of each of the N ``texts``."""
    return self.label_map.decode(np.argmax(self.predict_proba(texts), axis=1))


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def jsonable(value):
  """Values -> JSON types (ConfigDicts, tuples, numpy scalars and arrays)."""
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  if isinstance(value, dict):
    return {str(k): jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return jsonable(value.tolist())
  if isinstance(value, np.generic):
    return value.item()
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return str(value)


def _fsync_dir(path: pathlib.Path) -> None:
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def save(path, params, featurizer, label_map, config=None,
         extra: dict | None = None) -> pathlib.Path:
  """Writes a model directory at ``path`` atomically (replacing any old one).

  Args:
    path: the directory to create (e.g. ``workdir/model``).
    params: `linjax.Params` with W [F, C], b [C] (any array type).
    featurizer: the fitted Featurizer that produced the features.
    label_map: LabelMap (or a list of C names) mapping class ids to names.
    config: the training config (ConfigDict or dict), stored as JSON.
    extra: any JSON-able dict to keep alongside (e.g. the run's results).

  Returns:
    The directory path.
  """
  import linjax  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  names = (list(label_map.names) if hasattr(label_map, 'names')
           else list(label_map))
  arrays = {'W': np.asarray(params.W, np.float32),
            'b': np.asarray(params.b, np.float32)}
  if arrays['W'].ndim != 2 or arrays['b'].shape != (arrays['W'].shape[1],):
    raise ValueError(f'save: need W [F, C] and b [C]; got '
                     f'{arrays["W"].shape} and {arrays["b"].shape}.')
  if len(names) != arrays['W'].shape[1]:
    raise ValueError(f'save: {len(names)} label names for '
                     f'{arrays["W"].shape[1]} classes.')
  if featurizer.num_features != arrays['W'].shape[0]:
    raise ValueError(f'save: featurizer has {featurizer.num_features} '
                     f'features but W has {arrays["W"].shape[0]} rows.')
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{path.name}.tmp-',
                                      dir=path.parent))
  try:
    manifest_arrays = {}
    for name, array in arrays.items():
      file = tmp / f'{name}.npy'
      with open(file, 'wb') as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
      manifest_arrays[name] = dict(
          file=file.name, shape=list(array.shape), dtype=str(array.dtype),
          bytes=file.stat().st_size, sha256=_sha256(file))
    manifest = dict(
        format=FORMAT, format_version=FORMAT_VERSION,
        linjax_version=linjax.__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        arrays=manifest_arrays, labels=[str(n) for n in names],
        featurizer=featurizer.to_dict(), config=jsonable(config or {}),
        extra=jsonable(extra or {}))
    with open(tmp / MANIFEST, 'w', encoding='utf-8') as f:
      json.dump(manifest, f, ensure_ascii=False, indent=1)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o755)
    old = None
    if path.exists():
      if path.is_file() or (any(path.iterdir()) and
                            not (path / MANIFEST).is_file()):
        raise ValueError(f'save: {path} exists and is not a saved model; '
                         f'refusing to replace it.')
      old = path.parent / f'.{path.name}.old-{os.getpid()}'
      os.rename(path, old)
    os.rename(tmp, path)
    _fsync_dir(path.parent)
    if old is not None:
      shutil.rmtree(old, ignore_errors=True)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return path


def _read_manifest(path: pathlib.Path) -> dict:
  file = path / MANIFEST
  if not path.is_dir():
    raise ModelFileError(f'{path}: no saved model here (not a directory)')
  if not file.is_file():
    raise ModelFileError(f'{file}: missing; {path} is not a saved model')
  try:
    with open(file, encoding='utf-8') as f:
      manifest = json.load(f)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ModelFileError(f'{file}: not valid JSON (truncated or altered?): '
                         f'{e}') from None
  if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
    raise ModelFileError(f'{file}: not a linjax saved model (format is '
                         f'{manifest.get("format") if isinstance(manifest, dict) else None!r}, '
                         f'expected {FORMAT!r})')
  version = manifest.get('format_version')
  if version != FORMAT_VERSION:
    raise ModelFileError(f'{file}: unsupported format version {version!r}; '
                         f'this linjax reads version {FORMAT_VERSION}')
  for key in ('arrays', 'labels', 'featurizer'):
    if key not in manifest:
      raise ModelFileError(f'{file}: missing key {key!r}')
  return manifest


def _load_array(path: pathlib.Path, name: str, entry: dict) -> np.ndarray:
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
  digest = _sha256(file)
  if digest != entry.get('sha256'):
    raise ModelFileError(f'{file}: checksum mismatch (SHA-256 {digest[:12]}..., '
                         f'expected {str(entry.get("sha256"))[:12]}...)')
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


def load(path) -> SavedModel:
  """Reads and verifies a model directory written by `save`.

  Args:
    path: the model directory.

  Returns:
    A SavedModel.

  Raises:
    ModelFileError: naming the file and what is wrong with it.
  """
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.core import model  # pylint: disable=g-import-not-at-top
  from linjax.text import featurizer as text  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  manifest = _read_manifest(path)
  arrays = {}
  for name in _ARRAYS:
    if name not in manifest['arrays']:
      raise ModelFileError(f'{path / MANIFEST}: no entry for array {name!r}')
    arrays[name] = _load_array(path, name, manifest['arrays'][name])
  W, b = arrays['W'], arrays['b']
  manifest_file = path / MANIFEST
  if W.ndim != 2 or b.shape != (W.shape[1],):
    raise ModelFileError(f'{manifest_file}: W {W.shape} and b {b.shape} do '
                         f'not form a [F, C], [C] model')
  labels = manifest['labels']
  if len(labels) != W.shape[1]:
    raise ModelFileError(f'{manifest_file}: {len(labels)} labels but W has '
                         f'{W.shape[1]} classes')
  try:
    featurizer = text.Featurizer.from_dict(manifest['featurizer'])
  except (KeyError, TypeError, ValueError) as e:
    raise ModelFileError(f'{manifest_file}: bad featurizer: {e}') from None
  if featurizer.num_features != W.shape[0]:
    raise ModelFileError(f'{manifest_file}: featurizer has '
                         f'{featurizer.num_features} features but W has '
                         f'{W.shape[0]} rows')
  return SavedModel(params=model.Params(W=W, b=b), featurizer=featurizer,
                    label_map=data.LabelMap.from_list(labels),
                    config=manifest.get('config', {}), meta=manifest)
