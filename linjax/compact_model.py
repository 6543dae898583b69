"""What a compact saved model stores: sparse rows of W, quantised, and the
featurizer's long number lists as arrays.

Shapes: F features, C classes, R rows of W that are not all zero.

* Sparse rows. With hashed features and min_df most rows of W [F, C] are all
  zero (healthtweets: 90,355 of 2^20). Only the others are kept:
  ``W.row_ids`` int32 [R] (ascending) and ``W.rows`` [R, C].
* Precision, chosen at save time:

  - ``float32``: the rows as they are; loading gives W back bit for bit.
  - ``float16``: IEEE half precision, relative error at most 2^-11 for
    |w| >= 2^-14 (absolute at most 2^-25 below); |w| > 65504 is refused.
  - ``int8``: symmetric 8-bit codes q in [-127, 127] with a float32 scale
    ``s`` per row (``int8_scale='row'``, ``W.scale`` [R]) or per column
    (``'column'``, ``W.scale`` [C]): ``s = max |w| / 127`` over the row or
    column, ``q = round(w / s)`` (the nearest code, the quotient taken in
    float64), loaded as ``q * s`` in float32: error at most ``s / 2`` per
    weight, plus that product's float32 rounding (half a unit in the last
    place of the loaded weight, up to ``127 * 2^-24 * s``). A row's largest
    weight decides its class scores most, so per-row scales keep more of it
    (see BUILD_NOTES).

* The featurizer's long lists (document frequencies, bucket names) are the
  other large part of a model: each list of at least `MIN_LIST` integers
  (or floats) leaves the JSON for an array in the same file, in the smallest
  integer dtype that holds it, as differences when it is sorted (ids),
  float64 for floats, so that it comes back exactly; the JSON keeps a
  reference ``{"$tensor": name, "encoding": "plain" | "delta"}``.
"""

from __future__ import annotations

import numpy as np

PRECISIONS = ('float32', 'float16', 'int8')
INT8_SCALES = ('row', 'column')
MIN_LIST = 16
REF = '$tensor'
_INT_TYPES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
              np.int64)
_F16_MAX = float(np.finfo(np.float16).max)


def check_precision(precision: str, int8_scale: str = 'row') -> None:
  """ValueError naming the bad ``precision`` or ``int8_scale``."""
  if precision not in PRECISIONS:
    raise ValueError(f'save: precision must be one of {PRECISIONS}, got '
                     f'{precision!r}.')
  if int8_scale not in INT8_SCALES:
    raise ValueError(f'save: int8_scale must be one of {INT8_SCALES}, got '
                     f'{int8_scale!r}.')


def quantize_int8(rows: np.ndarray, int8_scale: str = 'row'):
  """(codes int8 [R, C], scale float32 [R] or [C]) of finite ``rows``.

  ``s = max |w| / 127`` over each row (or column), ``q = round(w / s)``; an
  all-zero column gets ``s = 0`` and codes 0. The quotient is taken in
  float64: in float32 a ratio just above a half-way point (91.500003) can
  round to it and then to the farther code.
  """
  rows = np.asarray(rows, np.float32)
  if not np.all(np.isfinite(rows)):
    raise ValueError('save: W has non-finite weights; precision int8 needs '
                     'finite ones (use float32).')
  axis = 1 if int8_scale == 'row' else 0
  amax = np.max(np.abs(rows), axis=axis, initial=0.0)
  scale = (amax / np.float32(127.0)).astype(np.float32)
  safe = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float64)
  safe = safe[:, None] if axis == 1 else safe[None, :]
  codes = np.clip(np.rint(rows / safe), -127, 127).astype(np.int8)
  return codes, scale


def dequantize_int8(codes: np.ndarray, scale: np.ndarray,
                    int8_scale: str = 'row') -> np.ndarray:
  """float32 [R, C] ``codes * scale`` (scale per row [R] or column [C])."""
  scale = np.asarray(scale, np.float32)
  scale = scale[:, None] if int8_scale == 'row' else scale[None, :]
  return codes.astype(np.float32) * scale


def compress_weights(W: np.ndarray, precision: str = 'float32',
                     int8_scale: str = 'row') -> dict:
  """Arrays storing W [F, C] compactly: W.row_ids, W.rows (and W.scale).

  Returns:
    dict name -> numpy array (see the module docstring).
  """
  check_precision(precision, int8_scale)
  W = np.asarray(W, np.float32)
  row_ids = np.flatnonzero(np.any(W != 0, axis=1)).astype(np.int32)
  rows = W[row_ids]
  out = {'W.row_ids': row_ids}
  if precision == 'float32':
    out['W.rows'] = rows
  elif precision == 'float16':
    big = np.max(np.abs(rows[np.isfinite(rows)]), initial=0.0)
    if big > _F16_MAX:
      raise ValueError(f'save: precision float16 holds |w| <= 65504, but W '
                       f'has {big:g}; use float32 or int8.')
    out['W.rows'] = rows.astype(np.float16)
  else:
    out['W.rows'], out['W.scale'] = quantize_int8(rows, int8_scale)
  return out


def expand_weights(arrays: dict, shape, precision: str,
                   int8_scale: str = 'row') -> np.ndarray:
  """float32 W [F, C] from `compress_weights`' arrays (zeros elsewhere).

  Raises:
    ValueError: naming what does not fit (ids out of range or unsorted,
      shapes that disagree).
  """
  num_features, num_classes = shape
  row_ids, rows = arrays['W.row_ids'], arrays['W.rows']
  want = {'float32': np.float32, 'float16': np.float16, 'int8': np.int8}
  if rows.dtype != want[precision] or row_ids.dtype != np.int32:
    raise ValueError(f'W.rows is {rows.dtype} and W.row_ids {row_ids.dtype}, '
                     f'expected {np.dtype(want[precision])} and int32 for '
                     f'precision {precision}')
  if rows.shape != (row_ids.shape[0], num_classes) or row_ids.ndim != 1:
    raise ValueError(f'W.rows {list(rows.shape)} and W.row_ids '
                     f'{list(row_ids.shape)} do not fit {num_classes} classes')
  if row_ids.size and (row_ids[0] < 0 or row_ids[-1] >= num_features or
                       np.any(np.diff(row_ids) <= 0)):
    raise ValueError(f'W.row_ids must be ascending ids in [0, '
                     f'{num_features})')
  if precision == 'int8':
    scale = arrays.get('W.scale')
    want_shape = (rows.shape[0] if int8_scale == 'row' else num_classes,)
    if scale is None or scale.dtype != np.float32 or scale.shape != want_shape:
      raise ValueError(f'W.scale must be float32 {list(want_shape)} for '
                       f'int8_scale {int8_scale!r}')
    rows = dequantize_int8(rows, scale, int8_scale)
  W = np.zeros((num_features, num_classes), np.float32)
  W[row_ids] = rows
  return W


# -- long JSON lists as arrays -------------------------------------------------


def _smallest_int(values: np.ndarray) -> np.ndarray:
  lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
  for dtype in _INT_TYPES:
    info = np.iinfo(dtype)
    if info.min <= lo and hi <= info.max:
      return values.astype(dtype)
  raise OverflowError  # not reached: values are int64


def _from_ndarray(values: np.ndarray):
  """(array, encoding) of a 1-D integer or float numpy array, else None."""
  if values.ndim != 1 or values.shape[0] < MIN_LIST:
    return None
  if values.dtype.kind in 'iu' and values.dtype.itemsize <= 8 and not (
      values.dtype == np.uint64 and values.size and values.max() >= 2**63):
    values = values.astype(np.int64)
    if np.all(values[1:] >= values[:-1]):
      delta = _smallest_int(np.diff(values, prepend=0))
      if np.array_equal(np.cumsum(delta, dtype=np.int64), values):
        return delta, 'delta'
    return _smallest_int(values), 'plain'
  if values.dtype.kind == 'f':
    return values.astype(np.float64), 'plain'
  return None


def _as_array(items):
  """(array, encoding) for a list (or a 1-D numpy array: no list round trip)
  worth storing as an array, else None.

  Exact: ints (not bools) within int64 and floats (float64, as Python's)
  only; a delta encoding is kept only if its int64 cumulative sum gives the
  values back (it could overflow for values spanning more than 2^63).
  """
  if isinstance(items, np.ndarray):
    return _from_ndarray(items)
  if len(items) < MIN_LIST:
    return None
  kinds = set(map(type, items))   # C speed; bools and numpy scalars differ
  if kinds == {int}:
    try:
      values = np.fromiter(items, np.int64, len(items))
    except OverflowError:   # beyond int64: stays a JSON list
      return None
    if np.all(values[1:] >= values[:-1]):
      delta = _smallest_int(np.diff(values, prepend=0))
      if np.array_equal(np.cumsum(delta, dtype=np.int64), values):
        return delta, 'delta'
    return _smallest_int(values), 'plain'
  if kinds == {float}:
    return np.fromiter(items, np.float64, len(items)), 'plain'
  return None


def _from_array(array: np.ndarray, encoding: str) -> list:
  if encoding == 'delta':
    return np.cumsum(array, dtype=np.int64).tolist()
  if np.issubdtype(array.dtype, np.integer):
    return array.astype(np.int64).tolist()
  return array.astype(np.float64).tolist()


def lists_to_arrays(value, prefix: str):
  """Moves long number lists out of a JSON value (descending into objects).

  Args:
    value: a JSON-able dict (e.g. ``Featurizer.to_dict()``); 1-D integer
      or float numpy arrays may stand in for long lists (saved alike, with
      no round trip through Python lists; a short one becomes a list).
    prefix: the arrays' name prefix (``featurizer``).

  Returns:
    (the value with references in place of the lists, dict name -> array).
    `arrays_to_lists` of both gives back an equal value.
  """
  arrays = {}

  def visit(node, path):
    if isinstance(node, dict):
      if REF in node:
        raise ValueError(f'save: {path} has a key {REF!r}, reserved by the '
                         'saved-model format')
      return {k: visit(v, f'{path}/{k}') for k, v in node.items()}
    if isinstance(node, (list, tuple, np.ndarray)):
      found = _as_array(node)
      if found is not None:
        name = path
        while name in arrays:
          name += '_'
        array, encoding = found
        arrays[name] = array
        return {REF: name, 'encoding': encoding}
      if isinstance(node, np.ndarray):
        return node.tolist()
    return node

  return visit(value, prefix), arrays


def arrays_to_lists(value, arrays: dict):
  """Inverse of `lists_to_arrays`; KeyError/ValueError on a bad reference."""
  def visit(node):
    if isinstance(node, dict):
      if REF in node:
        if set(node) != {REF, 'encoding'} or node['encoding'] not in (
            'plain', 'delta'):
          raise ValueError(f'bad array reference {node!r}')
        if node[REF] not in arrays:
          raise KeyError(f'array {node[REF]!r} is not in the file')
        array = arrays[node[REF]]
        if array.ndim != 1 or (node['encoding'] == 'delta' and
                               not np.issubdtype(array.dtype, np.integer)):
          raise ValueError(f'array {node[REF]!r} does not fit its reference')
        return _from_array(array, node['encoding'])
      return {k: visit(v) for k, v in node.items()}
    return node

  return visit(value)
