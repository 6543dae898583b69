"""Named numpy arrays in one safetensors file, read and written with numpy.

The safetensors format (https://github.com/huggingface/safetensors) is::

  8 bytes    N, little-endian uint64: the header's length
  N bytes    UTF-8 JSON header: {name: {"dtype": "F32", "shape": [...],
             "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
             (padded with spaces to a multiple of 8 bytes)
  the rest   the arrays' bytes, little-endian, C order, back to back;
             offsets count from the end of the header

It holds plain numbers and a string-to-string metadata map, nothing
executable (no pickle), and the `safetensors` package, PyTorch, JAX, Rust and
JavaScript tools read it. Writing it takes a few lines of numpy, so linjax
does not depend on that package; tests check both directions against it when
it is installed. `decode` checks every header entry (known dtype, shape,
offsets inside the data and matching the shape, no gaps or overlaps, as the
package does) and raises `TensorFileError` with one line naming the file.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

# safetensors dtype names <-> numpy dtypes (little-endian).
DTYPES = {'BOOL': '|b1', 'U8': '|u1', 'I8': '|i1', 'U16': '<u2', 'I16': '<i2',
          'F16': '<f2', 'U32': '<u4', 'I32': '<i4', 'F32': '<f4', 'U64': '<u8',
          'I64': '<i8', 'F64': '<f8'}
_NAMES = {np.dtype(v): k for k, v in DTYPES.items()}
_MAX_HEADER = 100 << 20  # the package's own limit


class TensorFileError(ValueError):
  """A safetensors file is malformed or holds what it should not."""


def encode(arrays: dict, metadata: dict | None = None) -> bytes:
  """The safetensors bytes of ``arrays`` (name -> numpy array).

  Args:
    arrays: str -> array of a dtype in `DTYPES` (any byte order; stored
      little-endian). Names must not be ``__metadata__``.
    metadata: optional str -> str map stored in the header.

  Returns:
    The file's bytes. Arrays are laid out in name order.
  """
  header, chunks, offset = {}, [], 0
  if metadata:
    if not all(isinstance(k, str) and isinstance(v, str)
               for k, v in metadata.items()):
      raise TypeError('encode: metadata must map str to str')
    header['__metadata__'] = dict(metadata)
  for name in sorted(arrays):
    if not isinstance(name, str) or name == '__metadata__':
      raise ValueError(f'encode: bad array name {name!r}')
    array = np.asarray(arrays[name])
    kind = _NAMES.get(array.dtype.newbyteorder('<')
                      if array.dtype.byteorder == '>' else array.dtype)
    if kind is None:
      raise TypeError(f'encode: array {name!r} has dtype {array.dtype}, '
                      f'not one of {sorted(DTYPES)}')
    raw = np.ascontiguousarray(array, dtype=DTYPES[kind]).tobytes()
    header[name] = dict(dtype=kind, shape=list(array.shape),
                        data_offsets=[offset, offset + len(raw)])
    chunks.append(raw)
    offset += len(raw)
  text = json.dumps(header, separators=(',', ':'),
                    ensure_ascii=False).encode('utf-8')
  text += b' ' * (-len(text) % 8)
  return b''.join([struct.pack('<Q', len(text)), text] + chunks)


def decode(raw: bytes, where: str = 'tensor file'
           ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """(arrays, metadata) of safetensors bytes; arrays are fresh copies.

  Raises:
    TensorFileError: naming ``where`` and what is malformed.
  """
  def fail(what):
    raise TensorFileError(f'{where}: not a valid safetensors file: {what}')

  if len(raw) < 8:
    fail('shorter than its 8-byte header length')
  (size,) = struct.unpack('<Q', raw[:8])
  if size > _MAX_HEADER or 8 + size > len(raw):
    fail(f'header length {size} exceeds the file ({len(raw)} bytes)')
  try:
    header = json.loads(raw[8:8 + size].decode('utf-8'))
  except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
    fail(f'header is not UTF-8 JSON ({e})')   # RecursionError: too deep
  if not isinstance(header, dict):
    fail('header is not a JSON object')
  metadata = header.pop('__metadata__', None) or {}
  if not isinstance(metadata, dict) or not all(
      isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
    fail('__metadata__ must map strings to strings')
  data = memoryview(raw)[8 + size:]
  arrays, spans = {}, []
  for name, entry in header.items():
    if not isinstance(entry, dict) or set(entry) != {'dtype', 'shape',
                                                      'data_offsets'}:
      fail(f'entry {name!r} must have exactly dtype, shape, data_offsets')
    kind, shape, span = entry['dtype'], entry['shape'], entry['data_offsets']
    if kind not in DTYPES:
      fail(f'entry {name!r} has unknown dtype {kind!r}')
    if (not isinstance(shape, list) or
        not all(type(d) is int and d >= 0 for d in shape)):
      fail(f'entry {name!r} has a bad shape {shape!r}')
    if (not isinstance(span, list) or len(span) != 2 or
        not all(type(o) is int for o in span) or
        not 0 <= span[0] <= span[1] <= len(data)):
      fail(f'entry {name!r} has bad data_offsets {span!r} for '
           f'{len(data)} data bytes')
    dtype = np.dtype(DTYPES[kind])
    if span[1] - span[0] != math.prod(shape) * dtype.itemsize:
      fail(f'entry {name!r}: {span[1] - span[0]} bytes for shape {shape} '
           f'of {kind}')
    arrays[name] = np.frombuffer(data[span[0]:span[1]], dtype).reshape(
        shape).astype(dtype.newbyteorder('='))
    spans.append(tuple(span))
  end = 0
  for begin, stop in sorted(spans):
    if begin != end:
      fail('the arrays overlap or leave gaps in the data')
    end = stop
  if end != len(data):
    fail(f'{len(data) - end} data bytes belong to no array')
  return arrays, metadata
