"""Compact saved models: sparse rows, float16 and int8, the safetensors file.

Error bounds are computed here from the number formats (IEEE half precision,
symmetric 8-bit codes), not from `compact_model`'s code; the safetensors file
is checked against the `safetensors` package when it is installed.
"""

import json
import os
import pathlib

import numpy as np
import pytest

import linjax
from linjax import compact_model
from linjax import saved_model
from linjax import tensor_file
from linjax.saved_model import ModelFileError
from linjax.text import featurizer as text

TEXTS = ['the cat sat on the mat', 'a dog ran to the park!',
         'the dog sat, the cat ran', 'cats and dogs and cats']
QUERIES = ['the cat ran to the mat', 'dogs!', '', 'never seen words']


def _data_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get(
      'LINJAX_DATA_DIR',
      pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data'))


def _sparse_model(seed=0, num_classes=3, scale=1.0):
  """A 256-bucket model whose W has 3 of every 4 rows all zero."""
  featurizer = text.Featurizer(ngrams=2, buckets=256).fit(TEXTS)
  rng = np.random.default_rng(seed)
  W = (rng.normal(size=(256, num_classes)) * scale).astype(np.float32)
  W[rng.permutation(256)[:192]] = 0.0
  b = rng.normal(size=num_classes).astype(np.float32)
  return linjax.Params(W, b), featurizer


def _size(path):
  return sum(p.stat().st_size for p in path.iterdir())


def test_float32_sparse_rows_round_trip_exactly(tmp_path):
  params, featurizer = _sparse_model()
  saved_model.save(tmp_path / 'm', params, featurizer, ['a', 'b', 'c'])
  loaded = saved_model.load(tmp_path / 'm')
  np.testing.assert_array_equal(loaded.params.W, params.W)
  np.testing.assert_array_equal(loaded.params.b, params.b)
  arrays, _ = tensor_file.decode((tmp_path / 'm' / 'arrays.safetensors'
                                  ).read_bytes())
  nonzero = [i for i in range(256) if any(params.W[i] != 0)]
  assert arrays['W.row_ids'].tolist() == nonzero and len(nonzero) == 64
  assert loaded.meta['weights']['rows'] == 64


def test_float16_error_bound(tmp_path):
  params, featurizer = _sparse_model()
  # Weights over many magnitudes, including float16's subnormal range.
  rng = np.random.default_rng(1)
  W = np.where(params.W != 0, params.W * 10.0 ** rng.uniform(
      -9, 4, size=params.W.shape), 0).astype(np.float32)
  saved_model.save(tmp_path / 'm', linjax.Params(W, params.b), featurizer,
                   ['a', 'b', 'c'], precision='float16')
  got = saved_model.load(tmp_path / 'm').params.W
  # Round to nearest: relative error <= 2^-11 for normal halves (>= 2^-14),
  # absolute error <= half the subnormal spacing 2^-24 below.
  err = np.abs(got.astype(np.float64) - W)
  bound = np.maximum(np.abs(W) * 2.0**-11, 2.0**-25)
  assert np.all(err <= bound)
  assert np.any(err > 0)   # it did round
  np.testing.assert_array_equal(got[W == 0], 0)


def test_float16_refuses_what_it_cannot_hold(tmp_path):
  params, featurizer = _sparse_model()
  W = params.W.copy()
  W[np.flatnonzero(W.any(1))[0], 0] = 70000.0
  with pytest.raises(ValueError, match='float16 holds .* 70000; use float32'):
    saved_model.save(tmp_path / 'm', linjax.Params(W, params.b), featurizer,
                     'abc', precision='float16')


@pytest.mark.parametrize('int8_scale', ['row', 'column'])
def test_int8_error_bound(tmp_path, int8_scale):
  params, featurizer = _sparse_model(scale=7.0)
  saved_model.save(tmp_path / 'm', params, featurizer, 'abc',
                   precision='int8', int8_scale=int8_scale)
  loaded = saved_model.load(tmp_path / 'm')
  assert loaded.precision == 'int8'
  W = params.W.astype(np.float64)
  axis = 1 if int8_scale == 'row' else 0
  step = np.max(np.abs(W), axis=axis, keepdims=True) / 127  # one code
  err = np.abs(loaded.params.W - W)
  assert np.all(err <= step / 2 * (1 + 1e-6))
  # The largest weight of each row (column) is kept up to float rounding.
  big = np.expand_dims(np.argmax(np.abs(W), axis=axis), axis)
  want = np.take_along_axis(W, big, axis)
  got = np.take_along_axis(loaded.params.W, big, axis)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_array_equal(loaded.params.b, params.b)


def test_int8_worked_example():
  """One row by hand: s = 1.27 / 127 = 0.01, q = round(w / s)."""
  rows = np.array([[0.5, -1.27, 0.014], [0.0, 0.3, 0.0]], np.float32)
  codes, scale = compact_model.quantize_int8(rows, 'row')
  np.testing.assert_allclose(scale, [0.01, 0.3 / 127], rtol=1e-6)
  assert codes.tolist() == [[50, -127, 1], [0, 127, 0]]
  np.testing.assert_allclose(
      compact_model.dequantize_int8(codes, scale, 'row'),
      [[0.5, -1.27, 0.01], [0.0, 0.3, 0.0]], rtol=1e-6)
  # Per column: column 1's scale 1.27 / 127, column 2's 0.014 / 127, and an
  # all-zero column keeps codes 0.
  codes, scale = compact_model.quantize_int8(
      np.array([[0.5, -1.27, 0.0], [0.25, 0.3, 0.0]], np.float32), 'column')
  np.testing.assert_allclose(scale, [0.5 / 127, 0.01, 0.0], rtol=1e-6)
  assert codes.tolist() == [[127, -127, 0], [64, 30, 0]]
  with pytest.raises(ValueError, match='non-finite'):
    compact_model.quantize_int8(np.array([[np.nan, 1.0]]), 'row')


def test_compact_models_are_smaller_and_predict_alike(tmp_path):
  params, featurizer = _sparse_model(scale=3.0)
  sizes, top = {}, {}
  for precision in ('float32', 'float16', 'int8'):
    path = tmp_path / precision
    saved_model.save(path, params, featurizer, 'abc', precision=precision)
    raw = (path / 'arrays.safetensors').read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], 'little')])
    sizes[precision] = {k: v['data_offsets'][1] - v['data_offsets'][0]
                        for k, v in header.items() if k.startswith('W.')}
    top[precision] = saved_model.load(path).predict_proba(QUERIES).argmax(1)
  # 64 rows x 3 classes: 4, 2 and 1 byte a weight (+ 4 bytes a row scale).
  assert sizes == {
      'float32': {'W.row_ids': 64 * 4, 'W.rows': 64 * 3 * 4},
      'float16': {'W.row_ids': 64 * 4, 'W.rows': 64 * 3 * 2},
      'int8': {'W.row_ids': 64 * 4, 'W.rows': 64 * 3, 'W.scale': 64 * 4}}
  x = featurizer.transform(QUERIES).to_dense().astype(np.float64)
  want = (x @ params.W + params.b).argmax(1)
  for precision in top:
    np.testing.assert_array_equal(top[precision], want)


def _reseal_manifest(path, edit):
  """Edits model.json and recomputes its digest with the library's record
  (the keyless digest anyone can recompute)."""
  from linjax import model_digest
  meta = json.loads((path / 'model.json').read_text())
  edit(meta)
  meta['digest'] = model_digest.digest(meta)
  (path / 'model.json').write_text(json.dumps(meta))


def test_tampering_is_refused(tmp_path):
  params, featurizer = _sparse_model()
  path = tmp_path / 'm'
  saved_model.save(path, params, featurizer, 'abc', precision='int8')
  file = path / 'arrays.safetensors'
  good = file.read_bytes()
  # One int8 code changed: the file's SHA-256 no longer matches.
  raw = bytearray(good)
  header = 8 + int.from_bytes(raw[:8], 'little')
  begin = json.loads(raw[8:header])['W.rows']['data_offsets'][0]
  raw[header + begin] ^= 1
  file.write_bytes(bytes(raw))
  with pytest.raises(ModelFileError, match='arrays.safetensors: checksum '
                     'mismatch'):
    saved_model.load(path)
  file.write_bytes(good)
  saved_model.load(path)
  # The precision and the scale axis are sealed.
  manifest = (path / 'model.json').read_text()
  for key, value in (('precision', 'float16'), ('int8_scale', 'column')):
    meta = json.loads(manifest)
    meta['weights'][key] = value
    (path / 'model.json').write_text(json.dumps(meta))
    with pytest.raises(ModelFileError,
                       match=f'weights.{key} differs from what the model'):
      saved_model.load(path)
  (path / 'model.json').write_text(manifest)
  # Resealed, the arrays still disagree with the edited scale axis.
  _reseal_manifest(path, lambda m: m['weights'].update(int8_scale='column'))
  with pytest.raises(ModelFileError, match=r'bad weights: W.scale must be '
                     r'float32 \[3\]'):
    saved_model.load(path)


def test_convert_keeps_everything_but_the_precision(tmp_path):
  params, featurizer = _sparse_model()
  saved_model.save(tmp_path / 'a', params, featurizer, 'abc',
                   config=dict(train=dict(epochs=2)), extra=dict(acc=0.5),
                   loss='sigmoid')
  saved_model.convert(tmp_path / 'a', tmp_path / 'b', precision='int8',
                      int8_scale='column')
  a, b = saved_model.load(tmp_path / 'a'), saved_model.load(tmp_path / 'b')
  assert (b.precision, b.meta['weights']['int8_scale']) == ('int8', 'column')
  assert (b.config, b.meta['extra'], b.loss) == (a.config, a.meta['extra'],
                                                 'sigmoid')
  assert b.featurizer.to_dict() == a.featurizer.to_dict()
  assert _size(tmp_path / 'b') < _size(tmp_path / 'a')


# -- the safetensors file --------------------------------------------------


def _arrays():
  rng = np.random.default_rng(0)
  return {'W.rows': rng.normal(size=(5, 3)).astype(np.float16),
          'codes': rng.integers(-127, 128, size=(4, 2)).astype(np.int8),
          'ids': np.arange(7, dtype=np.int32), 'empty': np.zeros((0, 3),
                                                                 np.float32),
          'b': np.array([1.5, -2.0], '>f4')}   # big-endian in, little out


def test_safetensors_package_reads_ours_and_we_read_its(tmp_path):
  st = pytest.importorskip('safetensors.numpy')
  ours = tensor_file.encode(_arrays(), metadata={'precision': 'int8'})
  (tmp_path / 'ours.safetensors').write_bytes(ours)
  theirs = st.load_file(str(tmp_path / 'ours.safetensors'))
  assert sorted(theirs) == sorted(_arrays())
  for name, array in _arrays().items():
    np.testing.assert_array_equal(theirs[name], array)
    assert theirs[name].dtype == array.dtype.newbyteorder('=')
  from safetensors import safe_open
  with safe_open(str(tmp_path / 'ours.safetensors'), 'np') as f:
    assert f.metadata() == {'precision': 'int8'}
  raw = st.save({k: np.ascontiguousarray(v, v.dtype.newbyteorder('='))
                 for k, v in _arrays().items()}, metadata={'a': 'b'})
  arrays, metadata = tensor_file.decode(raw)
  assert metadata == {'a': 'b'}
  for name, array in _arrays().items():
    np.testing.assert_array_equal(arrays[name], array)


def _raw_file(header, data=b''):
  text_ = json.dumps(header).encode()
  return len(text_).to_bytes(8, 'little') + text_ + data


@pytest.mark.parametrize('raw,message', [
    (b'\x01\x00', 'shorter than its 8-byte header length'),
    ((10**6).to_bytes(8, 'little') + b'{}', 'header length 1000000 exceeds'),
    (_raw_file([1]), 'header is not a JSON object'),
    (_raw_file({'x': {'dtype': 'F8', 'shape': [1], 'data_offsets': [0, 1]}},
               b'\0'), "unknown dtype 'F8'"),
    (_raw_file({'x': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 4]}},
               b'\0' * 4), "entry 'x': 4 bytes for shape [2]"),
    (_raw_file({'x': {'dtype': 'U8', 'shape': [2], 'data_offsets': [0, 9]}},
               b'\0' * 2), 'bad data_offsets [0, 9]'),
    (_raw_file({'x': {'dtype': 'U8', 'shape': [2], 'data_offsets': [0, 2]},
                'y': {'dtype': 'U8', 'shape': [2], 'data_offsets': [1, 3]}},
               b'\0' * 3), 'overlap or leave gaps'),
    (_raw_file({'x': {'dtype': 'U8', 'shape': [2], 'data_offsets': [0, 2]}},
               b'\0' * 3), '1 data bytes belong to no array'),
    (_raw_file({'x': {'dtype': 'U8', 'shape': [-1], 'data_offsets': [0, 0]}}),
     'bad shape [-1]'),
    (_raw_file({'__metadata__': {'a': 1}}), '__metadata__ must map strings'),
])
def test_malformed_safetensors_is_refused(raw, message):
  with pytest.raises(tensor_file.TensorFileError) as info:
    tensor_file.decode(raw, 'f.safetensors')
  assert str(info.value).startswith('f.safetensors: not a valid safetensors '
                                    'file: ')
  assert message in str(info.value)


def test_tensor_file_round_trip():
  arrays, metadata = tensor_file.decode(tensor_file.encode(_arrays(),
                                                           {'k': 'v'}))
  assert metadata == {'k': 'v'} and sorted(arrays) == sorted(_arrays())
  for name, array in _arrays().items():
    np.testing.assert_array_equal(arrays[name], array)
  with pytest.raises(TypeError, match='dtype complex64'):
    tensor_file.encode({'z': np.zeros(2, np.complex64)})


# -- the featurizer's long lists ---------------------------------------------


def test_long_lists_become_arrays_and_come_back_exactly():
  value = {
      'ids': list(range(0, 2000, 7)),              # sorted: deltas, uint8
      'grams': [-1, 5, 300, 2] * 10,              # unsorted, signed: int16
      'idf': [0.1 * i for i in range(20)],        # floats: float64
      'short': [3, 2, 1],                          # below MIN_LIST: stays
      'mixed': [1, 2.0] * 10,                      # mixed kinds: stays
      'huge': [2**70] * 20,                        # beyond int64: stays
      'names': ['a'] * 20,                         # strings: stay
      'nested': {'counts': [1] * 16, 'n': 3}}
  out, arrays = compact_model.lists_to_arrays(value, 'f')
  assert out['ids'] == {'$tensor': 'f/ids', 'encoding': 'delta'}
  assert arrays['f/ids'].dtype == np.uint8 and arrays['f/ids'][1] == 7
  assert arrays['f/grams'].dtype == np.int16
  assert out['grams']['encoding'] == 'plain'
  assert arrays['f/idf'].dtype == np.float64
  assert arrays['f/nested/counts'].dtype == np.uint8
  for key in ('short', 'mixed', 'huge', 'names'):
    assert out[key] == value[key]
  back = compact_model.arrays_to_lists(out, arrays)
  assert back == value
  assert all(type(v) is int for v in back['ids'])
  with pytest.raises(KeyError, match="'f/ids' is not in the file"):
    compact_model.arrays_to_lists(out, {})
  with pytest.raises(ValueError, match='reserved'):
    compact_model.lists_to_arrays({'x': {'$tensor': 1}}, 'f')


# -- a real corpus ------------------------------------------------------------


def test_healthtweets_int8_model_is_small_and_agrees(tmp_path):
  """The issue's targets on a real model (default options, full train)."""
  root = _data_dir() / 'healthtweets'
  if not (root / 'train.tsv').exists():
    pytest.skip(f'{root} not found (set LINJAX_DATA_DIR)')
  from linjax.data import corpus as data
  from linjax.engine import training
  train = data.read_corpus(root / 'train.tsv')
  test = data.read_corpus(root / 'test.tsv')
  labels = data.LabelMap.fit(train.labels)
  featurizer = text.Featurizer()
  x = featurizer.fit_transform(train.texts)
  fit = training.fit(x, labels.encode(train.labels), labels.num_classes)
  y = labels.encode(test.labels)
  results = {}
  for precision in ('float32', 'int8'):
    path = tmp_path / precision
    saved_model.save(path, fit.params, featurizer, labels,
                     precision=precision)
    results[precision] = (_size(path),
                          saved_model.load(path).predict_proba(test.texts
                                                               ).argmax(1))
  size, top = results['int8']
  _, top32 = results['float32']
  assert size <= 5_000_000, size
  assert np.mean(top == top32) >= 0.995
  assert abs(np.mean(top == y) - np.mean(top32 == y)) <= 0.002
