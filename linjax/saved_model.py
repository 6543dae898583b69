"""A trained model on disk: one safetensors file plus a sealed JSON manifest.

Layout of a saved model directory (format version 4; no pickle anywhere)::

  model/
    model.json          manifest (UTF-8 JSON, see below)
    arrays.safetensors  every array (linjax/tensor_file.py): the rows of W
                        that are not all zero, b, and the featurizer's long
                        number lists (linjax/compact_model.py)

``save(..., precision=...)`` chooses how W's rows are stored: ``float32``
(exact), ``float16`` or ``int8`` with a scale per row or per column
(``int8_scale``); see linjax/compact_model.py for the error bounds. A
healthtweets model (2^20 x 16 floats dense: 80 MB in format 2) is 8.5 MB
in float32, 5.7 MB in float16 and 4.6 MB in int8 with row scales, at the
same test accuracy (BUILD_NOTES).

``model.json`` holds::

  format: "linjax.saved_model"      format_version: 4
  linjax_version: "0.1.0"           created: ISO-8601 UTC time
  loss: "softmax", "sigmoid" (multi-label), any name of the table of losses
        (linjax/core/losses.py) or a user's "MODULE:NAME"; `load` finds it
        in the table (importing MODULE) or fails naming it
  weights: {"shape": [F, C], "rows": R, "precision": "int8",
            "int8_scale": "row"}
  arrays: {"file": "arrays.safetensors", "bytes": n, "sha256": "...",
           "tensors": {"W.rows": {"dtype": "int8", "shape": [R, C]},
                       "W.row_ids": ..., "W.scale": ..., "b": ..., ...}}
  labels: [C class names, in class-id order]
  featurizer: Featurizer.to_dict() (settings, vocabulary or hash names, IDF),
              its long number lists replaced by {"$tensor": name, ...}
  config: the run's config as a dict          extra: caller's JSON (results)
  digest: the integrity digest (linjax/model_digest.py)

The digest seals everything else in the manifest, so also, through the
array file's SHA-256, the arrays and the precision. `load` recomputes it,
then the file's size and SHA-256, its header against ``tensors``, the rows
against ``weights``, and the agreement of F and C with the featurizer and
labels, and raises `ModelFileError` with one line naming the file and what
is wrong ("labels differ from those the model was saved with"). With
``LINJAX_MODEL_KEY`` set the digest is an HMAC that a forger cannot
recompute (see linjax/model_digest.py).

Older formats: version 3 is version 4's layout from before the featurizer's
``hash`` setting (its featurizer hashes tokens with FNV-1a; version 4's
records ``settings.hash``, by default ``poly64``): it loads, with FNV-1a, so
it predicts as it did; an older linjax refuses version 4 instead of
featurising with the wrong hash. Version 2 (dense ``W.npy`` and ``b.npy``,
read with ``allow_pickle=False``) still loads, and `convert` rewrites one as
the current version (keeping its hash);
version 1 (before the digest) is refused with a message, and `upgrade` seals
one as version 2 once you have decided to trust it.

`save` writes into a temporary sibling directory and renames it into place, so
a crash leaves either the old model or the new one, never half of one.

The loaded model's predictions are in linjax/loaded_model.py (`SavedModel`)
and the checks `load` makes on each file in linjax/model_file_checks.py.
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

import numpy as np

from linjax import compact_model
from linjax import model_digest
from linjax import model_file_checks
from linjax import tensor_file
from linjax.core import losses
from linjax.loaded_model import SavedModel
from linjax.model_digest import KEY_ENV  # pylint: disable=unused-import
from linjax.model_digest import ModelFileError
from linjax.model_file_checks import ARRAY_FILE
from linjax.model_file_checks import FORMAT
from linjax.model_file_checks import MANIFEST

FORMAT_VERSION = 4  # 4: the featurizer records its token hash (poly64).
PRECISIONS = compact_model.PRECISIONS


# Exact types (not subclasses such as numpy.float64) that JSON takes as is.
_JSON_SCALARS = frozenset({bool, int, float, str, type(None)})


def jsonable(value):
  """Values -> JSON types (ConfigDicts, dataclasses, tuples, numpy values)."""
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    value = dataclasses.asdict(value)
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  if isinstance(value, dict):
    return {str(k): jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    # The common long case, a list of plain numbers, without a call each
    # (the set of types is found at C speed).
    if _JSON_SCALARS.issuperset(map(type, value)):
      return list(value)
    return [jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return jsonable(value.tolist())
  if isinstance(value, np.generic):
    return value.item()
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return str(value)


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


def _write(file: pathlib.Path, data: bytes) -> None:
  with open(file, 'wb') as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def _write_json(file: pathlib.Path, obj: dict) -> None:
  _write(file, json.dumps(obj, ensure_ascii=False, indent=1).encode('utf-8'))


def _replace_dir(tmp: pathlib.Path, path: pathlib.Path) -> None:
  """Renames the finished ``tmp`` to ``path``, replacing an old model."""
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


def save(path, params, featurizer, label_map, config=None,
         extra: dict | None = None, loss='softmax',
         precision: str = 'float32', int8_scale: str = 'row'
         ) -> pathlib.Path:
  """Writes a model directory at ``path`` atomically (replacing any old one).

  Args:
    path: the directory to create (e.g. ``workdir/model``).
    params: `linjax.Params` with W [F, C], b [C] (any array type).
    featurizer: the fitted Featurizer that produced the features.
    label_map: LabelMap (or a list of C names) mapping class ids to names.
    config: the training config (ConfigDict, options or dict), as JSON.
    extra: any JSON-able dict to keep alongside (e.g. the run's results).
    loss: the loss that trained it: a name of the table of losses
      (linjax/core/losses.py), a ``MODULE:NAME``, a function or a `Loss`;
      its name is recorded (how the scores are read).

  Raises:
    ValueError: a bad argument (nothing is written).
    linjax.core.losses.LossNotFound: ``loss`` is not in the table.
    precision: how W's non-zero rows are stored: 'float32' (exact),
      'float16' or 'int8' (see linjax/compact_model.py); b stays float32.
    int8_scale: 'row' or 'column', the int8 scales' axis.

  Returns:
    The directory path.
  """
  import linjax  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  names = (list(label_map.names) if hasattr(label_map, 'names')
           else list(label_map))
  W = np.asarray(params.W, np.float32)
  b = np.asarray(params.b, np.float32)
  if W.ndim != 2 or b.shape != (W.shape[1],):
    raise ValueError(f'save: need W [F, C] and b [C]; got {W.shape} and '
                     f'{b.shape}.')
  if len(names) != W.shape[1]:
    raise ValueError(f'save: {len(names)} label names for {W.shape[1]} '
                     'classes.')
  if featurizer.num_features != W.shape[0]:
    raise ValueError(f'save: featurizer has {featurizer.num_features} '
                     f'features but W has {W.shape[0]} rows.')
  loss = losses.get_loss(loss).name
  compact_model.check_precision(precision, int8_scale)
  arrays = compact_model.compress_weights(W, precision, int8_scale)
  arrays['b'] = b
  # Long number lists (or arrays) become arrays before the JSON conversion,
  # which would otherwise walk them element by element.
  featurizer_json, lists = compact_model.lists_to_arrays(
      featurizer.to_dict(), 'featurizer')
  featurizer_json = jsonable(featurizer_json)
  arrays.update(lists)
  raw = tensor_file.encode(arrays, metadata=dict(
      format=FORMAT, format_version=str(FORMAT_VERSION), precision=precision))
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{path.name}.tmp-',
                                      dir=path.parent))
  try:
    _write(tmp / ARRAY_FILE, raw)
    manifest = dict(
        format=FORMAT, format_version=FORMAT_VERSION,
        linjax_version=linjax.__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        loss=loss,
        weights=dict(shape=list(W.shape),
                     rows=int(arrays['W.row_ids'].shape[0]),
                     precision=precision,
                     int8_scale=int8_scale if precision == 'int8' else None),
        arrays=dict(file=ARRAY_FILE, bytes=len(raw),
                    sha256=hashlib.sha256(raw).hexdigest(),
                    tensors={k: dict(dtype=str(v.dtype), shape=list(v.shape))
                             for k, v in sorted(arrays.items())}),
        labels=[str(n) for n in names], featurizer=featurizer_json,
        config=jsonable(config or {}), extra=jsonable(extra or {}))
    manifest['digest'] = model_digest.digest(manifest)
    _write_json(tmp / MANIFEST, manifest)
    os.chmod(tmp, 0o755)
    _replace_dir(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return path


# -- load ---------------------------------------------------------------------


def load(path) -> SavedModel:
  """Reads and verifies a model directory written by `save`.

  Args:
    path: the model directory (format version 4, 3 or 2).

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
  manifest = model_file_checks.read_manifest(path)
  model_digest.verify(manifest_file, manifest)
  featurizer_json = manifest['featurizer']
  if manifest['format_version'] == 2:
    arrays = model_file_checks.load_npy_arrays(path, manifest)
    W, b = arrays['W'], arrays['b']
  else:
    arrays = model_file_checks.load_tensor_file(path, manifest)
    W = model_file_checks.dense_weights(manifest_file, manifest, arrays)
    b = arrays.get('b')
    if b is None:
      raise ModelFileError(f'{path / ARRAY_FILE}: no array \'b\'')
    try:
      featurizer_json = compact_model.arrays_to_lists(featurizer_json, arrays)
    except (KeyError, ValueError) as e:
      raise ModelFileError(f'{manifest_file}: bad featurizer: {e}') from None
  if W.ndim != 2 or b.shape != (W.shape[1],):
    raise ModelFileError(f'{manifest_file}: W {W.shape} and b {b.shape} do '
                         f'not form a [F, C], [C] model')
  labels, loss = manifest['labels'], manifest['loss']
  if not isinstance(loss, str):
    raise ModelFileError(f'{manifest_file}: loss must be a name, got '
                         f'{loss!r}')
  try:
    losses.get_loss(loss)
  except losses.LossNotFound as e:
    raise ModelFileError(f'{manifest_file}: the model was trained with loss '
                         f'{loss!r}, which cannot be found here: {e}') from None
  if not isinstance(labels, list) or not all(isinstance(n, str)
                                             for n in labels):
    raise ModelFileError(f'{manifest_file}: labels must be a list of strings')
  if len(labels) != W.shape[1]:
    raise ModelFileError(f'{manifest_file}: {len(labels)} labels but W has '
                         f'{W.shape[1]} classes')
  if len(set(labels)) != len(labels):
    raise ModelFileError(f'{manifest_file}: duplicate label names')
  try:
    featurizer = text.Featurizer.from_dict(featurizer_json)
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


def convert(source, destination, precision: str = 'float32',
            int8_scale: str = 'row') -> pathlib.Path:
  """Loads (and verifies) a saved model, saves it again in this format.

  Turns a version 2 or 3 model into a compact current one, or a float32
  model into a float16/int8 one; ``destination`` may equal ``source``.
  Config, extra, loss and the featurizer (its token hash included: a model
  cannot be rehashed without its training texts) are kept.

  Returns:
    The destination directory.

  Raises:
    ValueError: ``precision`` is wider than the source's (int8 to float16 or
      float32, float16 to float32): the weights would keep their rounding
      under a label that claims more.
  """
  m = load(source)
  order = compact_model.PRECISIONS   # widest first
  if (precision in order and m.precision in order and
      order.index(precision) < order.index(m.precision)):
    raise ValueError(
        f'convert: {source} is stored as {m.precision}; {precision} would '
        f'keep its {m.precision} rounding under a {precision} label. Convert '
        f'the original model instead.')
  return save(destination, m.params, m.featurizer, m.label_map,
              config=m.config, extra=m.meta.get('extra'), loss=m.loss,
              precision=precision, int8_scale=int8_scale)


def upgrade(path) -> pathlib.Path:
  """Seals a format-version-1 model in place, after checking its arrays.

  Version 1 checksummed the arrays but not the manifest, so an edit to its
  labels or featurizer cannot be detected now: call this only on a model you
  trust. The manifest is rewritten atomically as version 2 (loss 'softmax',
  the only loss version 1 had; its dense .npy arrays stay) and then loaded
  to check it. `convert` then makes it a compact current-version model.

  Returns:
    The directory path.
  """
  path = pathlib.Path(path)
  manifest = model_file_checks.read_manifest(path, versions=(1,))
  model_file_checks.load_npy_arrays(path, manifest)
  manifest.update(format_version=2, loss='softmax')
  manifest['digest'] = model_digest.digest(manifest)
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
