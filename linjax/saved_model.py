"""A trained model on disk: plain arrays plus a sealed JSON manifest.

Layout of a saved model directory (no pickle anywhere)::

  model/
    model.json   manifest (UTF-8 JSON, see below)
    W.npy        float32 [F, C] class templates (`np.save`, allow_pickle=False)
    b.npy        float32 [C] biases

``model.json`` holds::

  format: "linjax.saved_model"      format_version: 2
  linjax_version: "0.1.0"           created: ISO-8601 UTC time
  loss: "softmax" (or "sigmoid", multi-label)
  arrays: {"W": {"file": "W.npy", "shape": [F, C], "dtype": "float32",
                 "bytes": n, "sha256": "..."}, "b": {...}}
  labels: [C class names, in class-id order]
  featurizer: Featurizer.to_dict() (settings, vocabulary or hash names, IDF)
  config: the run's config as a dict          extra: caller's JSON (results)
  digest: {"algorithm": "sha256", "sections": {...}, "value": "..."}

The digest seals everything else in the manifest, so also, through the
arrays' own SHA-256, the arrays. Each manifest entry (and each entry of a
nested object, to depth 3: ``featurizer.settings.ngrams``) is hashed as
canonical JSON, ``json.dumps(v, sort_keys=True, separators=(',', ':'),
ensure_ascii=False)`` in UTF-8; ``sections`` maps the dotted paths to those
SHA-256s and ``value`` is the SHA-256 of the canonical JSON of ``sections``.
`load` recomputes all of it, then each array's size, SHA-256, shape and dtype,
then the agreement of F and C with the featurizer and labels, and raises
`ModelFileError` with one line naming the file and what changed ("labels
differ from those the model was saved with").

What this protects against: corruption, truncation and accidental edits
(swapped label names, a changed n-gram order), which would otherwise give
confident wrong predictions. It does NOT stop a deliberate forger, who can
recompute the hashes. For that, set ``LINJAX_MODEL_KEY`` (any secret string)
when saving and loading: ``value`` becomes an HMAC-SHA256 keyed with it
(algorithm "hmac-sha256"), a model saved with the key does not load without
it, and with the key set an unkeyed (or differently keyed) model is refused.

Models of format version 1 (before the digest) are refused with a message;
`upgrade` seals one in place once you have decided to trust it.

`save` writes into a temporary sibling directory and renames it into place, so
a crash leaves either the old model or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

import numpy as np

FORMAT = 'linjax.saved_model'
FORMAT_VERSION = 2
MANIFEST = 'model.json'
LOSSES = ('softmax', 'sigmoid')
KEY_ENV = 'LINJAX_MODEL_KEY'
_ARRAYS = ('W', 'b')
_REQUIRED = ('arrays', 'labels', 'featurizer', 'loss', 'digest')
_DIGEST_DEPTH = 3  # nested entries hashed one by one, to name what changed.


class ModelFileError(ValueError):
  """A saved model is missing, truncated, altered or of an unknown format."""


@dataclasses.dataclass
class SavedModel:
  """A loaded model: what `predict`-style callers need.

  params: `linjax.Params` of float32 numpy arrays, W [F, C] and b [C].
  featurizer: the fitted `linjax.text.Featurizer`.
  label_map: `linjax.data.LabelMap` with C names.
  config: the training config as a plain dict.
  meta: the whole manifest (versions, shapes, checksums, digest, extra).
  loss: 'softmax' (one class per document) or 'sigmoid' (multi-label).
  """

  params: Any
  featurizer: Any
  label_map: Any
  config: dict
  meta: dict
  loss: str = 'softmax'

  def predict_proba(self, texts) -> np.ndarray:
    """float32 [N, C] class probabilities of raw ``texts`` (N strings).

    Softmax rows sum to 1; with the sigmoid loss each column is that label's
    own probability.
    """
    from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
    x = self.featurizer.transform(texts)
    if self.loss == 'sigmoid':
      z = np.asarray(scoring.predict_logits(self.params, x), np.float64)
      return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)
    return np.asarray(scoring.predict_proba(self.params, x))

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
  """Values -> JSON types (ConfigDicts, dataclasses, tuples, numpy values)."""
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    value = dataclasses.asdict(value)
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


# -- the digest (see the module docstring) -----------------------------------


def _canonical(value) -> bytes:
  return json.dumps(value, sort_keys=True, separators=(',', ':'),
                    ensure_ascii=False).encode('utf-8')


def _sections(manifest: dict) -> dict[str, str]:
  """SHA-256 of every entry but the digest, and of nested entries to depth 3,
  keyed by dotted path (``featurizer.settings.ngrams``)."""
  out = {}

  def visit(path: str, value, depth: int) -> None:
    out[path] = hashlib.sha256(_canonical(value)).hexdigest()
    if isinstance(value, dict) and depth < _DIGEST_DEPTH:
      for key, child in value.items():
        visit(f'{path}.{key}', child, depth + 1)

  for key, value in manifest.items():
    if key != 'digest':
      visit(key, value, 1)
  return out


def _model_key() -> bytes | None:
  key = os.environ.get(KEY_ENV)
  return key.encode('utf-8') if key else None


def _seal(sections: dict, key: bytes | None) -> str:
  data = _canonical(sections)
  if key is None:
    return hashlib.sha256(data).hexdigest()
  return hmac.new(key, data, hashlib.sha256).hexdigest()


def _digest(manifest: dict) -> dict:
  """The digest record of a manifest (its JSON round trip, as load sees it)."""
  key = _model_key()
  sections = _sections(json.loads(json.dumps(manifest, ensure_ascii=False)))
  return dict(algorithm='sha256' if key is None else 'hmac-sha256',
              sections=sections, value=_seal(sections, key))


def _changes(saved: dict, now: dict) -> str:
  """'labels differ ...; featurizer.settings.ngrams differs ...' or ''."""
  removed = sorted(saved.keys() - now.keys())
  added = sorted(now.keys() - saved.keys())
  changed = [p for p in sorted(saved.keys() & now.keys()) if saved[p] != now[p]]
  # Name the deepest paths: a parent changes whenever a child does.
  every = removed + added + changed
  changed = [p for p in changed
             if not any(q.startswith(p + '.') for q in every)]
  removed = [p for p in removed if p.rpartition('.')[0] not in removed]
  added = [p for p in added if p.rpartition('.')[0] not in added]
  what = ([f'{p} was removed' for p in removed] +
          [f'{p} was added' for p in added] +
          ['labels differ from those the model was saved with (edited, '
           'reordered or swapped)' if p == 'labels' else
           f'{p} differs from what the model was saved with' for p in changed])
  more = f' (and {len(what) - 3} more)' if len(what) > 3 else ''
  return '; '.join(what[:3]) + more


def _verify_digest(file: pathlib.Path, manifest: dict) -> None:
  record = manifest['digest']
  if (not isinstance(record, dict) or
      not isinstance(record.get('sections'), dict) or
      not isinstance(record.get('value'), str)):
    raise ModelFileError(f'{file}: malformed integrity digest record')
  algorithm, key = record.get('algorithm'), _model_key()
  if algorithm not in ('sha256', 'hmac-sha256'):
    raise ModelFileError(f'{file}: unknown digest algorithm {algorithm!r}')
  if algorithm == 'hmac-sha256' and key is None:
    raise ModelFileError(f'{file}: the model is signed (hmac-sha256); set '
                         f'{KEY_ENV} to the key it was saved with')
  if algorithm == 'sha256' and key is not None:
    raise ModelFileError(f'{file}: {KEY_ENV} is set but the model is not '
                         'signed; unset it to load an unsigned model, or '
                         're-save the model with the key set')
  changes = _changes(record['sections'], _sections(manifest))
  if changes:
    raise ModelFileError(f'{file}: {changes}; it was edited or corrupted after '
                         'saving: restore or retrain the model')
  if not hmac.compare_digest(record['value'], _seal(record['sections'], key)):
    raise ModelFileError(
        f'{file}: ' + (f'signature mismatch: another {KEY_ENV}, or the model '
                       'was altered' if key is not None else
                       'the digest does not match its own record (the digest '
                       'was edited)'))


# -- save ---------------------------------------------------------------------


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


def _write_json(file: pathlib.Path, obj: dict) -> None:
  with open(file, 'w', encoding='utf-8') as f:
    json.dump(obj, f, ensure_ascii=False, indent=1)
    f.flush()
    os.fsync(f.fileno())


def save(path, params, featurizer, label_map, config=None,
         extra: dict | None = None, loss: str = 'softmax') -> pathlib.Path:
  """Writes a model directory at ``path`` atomically (replacing any old one).

  Args:
    path: the directory to create (e.g. ``workdir/model``).
    params: `linjax.Params` with W [F, C], b [C] (any array type).
    featurizer: the fitted Featurizer that produced the features.
    label_map: LabelMap (or a list of C names) mapping class ids to names.
    config: the training config (ConfigDict, options or dict), as JSON.
    extra: any JSON-able dict to keep alongside (e.g. the run's results).
    loss: 'softmax' or 'sigmoid' (multi-label), how the scores are read.

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
  if loss not in LOSSES:
    raise ValueError(f'save: loss must be one of {LOSSES}, got {loss!r}.')
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
        loss=loss, arrays=manifest_arrays, labels=[str(n) for n in names],
        featurizer=jsonable(featurizer.to_dict()),
        config=jsonable(config or {}), extra=jsonable(extra or {}))
    manifest['digest'] = _digest(manifest)
    _write_json(tmp / MANIFEST, manifest)
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


# -- load ---------------------------------------------------------------------


def _read_manifest(path: pathlib.Path, version: int = FORMAT_VERSION) -> dict:
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
  found = manifest.get('format_version')
  if found == 1 and version == FORMAT_VERSION:
    raise ModelFileError(
        f'{file}: format version 1 has no integrity digest (saved by an older '
        f'linjax); retrain, or if you trust it run once: python -c "from '
        f'linjax import saved_model; saved_model.upgrade(\'{path}\')"')
  if found != version:
    raise ModelFileError(f'{file}: unsupported format version {found!r}; '
                         f'this linjax reads version {version}')
  for key in (_REQUIRED if version == FORMAT_VERSION else _REQUIRED[:3]):
    if key not in manifest:
      raise ModelFileError(f'{file}: missing key {key!r}')
  return manifest


def _load_array(path: pathlib.Path, name: str, entry) -> np.ndarray:
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


def _load_arrays(path: pathlib.Path, manifest: dict) -> dict:
  entries = manifest['arrays']
  arrays = {}
  for name in _ARRAYS:
    if not isinstance(entries, dict) or name not in entries:
      raise ModelFileError(f'{path / MANIFEST}: no entry for array {name!r}')
    arrays[name] = _load_array(path, name, entries[name])
  return arrays


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
  manifest_file = path / MANIFEST
  manifest = _read_manifest(path)
  _verify_digest(manifest_file, manifest)
  arrays = _load_arrays(path, manifest)
  W, b = arrays['W'], arrays['b']
  if W.ndim != 2 or b.shape != (W.shape[1],):
    raise ModelFileError(f'{manifest_file}: W {W.shape} and b {b.shape} do '
                         f'not form a [F, C], [C] model')
  labels, loss = manifest['labels'], manifest['loss']
  if loss not in LOSSES:
    raise ModelFileError(f'{manifest_file}: unknown loss {loss!r}, expected '
                         f'one of {LOSSES}')
  if not isinstance(labels, list) or not all(isinstance(n, str)
                                             for n in labels):
    raise ModelFileError(f'{manifest_file}: labels must be a list of strings')
  if len(labels) != W.shape[1]:
    raise ModelFileError(f'{manifest_file}: {len(labels)} labels but W has '
                         f'{W.shape[1]} classes')
  if len(set(labels)) != len(labels):
    raise ModelFileError(f'{manifest_file}: duplicate label names')
  try:
    featurizer = text.Featurizer.from_dict(manifest['featurizer'])
  except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
    raise ModelFileError(f'{manifest_file}: bad featurizer: {e}') from None
  if featurizer.num_features != W.shape[0]:
    raise ModelFileError(f'{manifest_file}: featurizer has '
                         f'{featurizer.num_features} features but W has '
                         f'{W.shape[0]} rows')
  return SavedModel(params=model.Params(W=W, b=b), featurizer=featurizer,
                    label_map=data.LabelMap.from_list(labels),
                    config=manifest.get('config', {}), meta=manifest,
                    loss=loss)


def upgrade(path) -> pathlib.Path:
  """Seals a format-version-1 model in place, after checking its arrays.

  Version 1 checksummed the arrays but not the manifest, so an edit to its
  labels or featurizer cannot be detected now: call this only on a model you
  trust. The manifest is rewritten atomically as version 2 (loss 'softmax',
  the only loss version 1 had) and then loaded to check it.

  Returns:
    The directory path.
  """
  path = pathlib.Path(path)
  manifest = _read_manifest(path, version=1)
  _load_arrays(path, manifest)
  manifest.update(format_version=FORMAT_VERSION, loss='softmax')
  manifest['digest'] = _digest(manifest)
  fd, tmp = tempfile.mkstemp(prefix=f'.{MANIFEST}.tmp-', dir=path)
  os.close(fd)
  try:
    _write_json(pathlib.Path(tmp), manifest)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path / MANIFEST)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  _fsync_dir(path)
  load(path)
  return path
