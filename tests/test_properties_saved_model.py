"""Property tests of saved models (hypothesis).

Any model (shapes, label names in any script, featurizer settings, config)
round-trips bit for bit, or within the error bound of its precision; and any single edit of any value in model.json is
refused by `load`, with one line naming model.json.
"""

import json
import pathlib
import tempfile

from hypothesis import given, settings, strategies as st
import numpy as np

import linjax
from linjax import saved_model
from linjax.text import featurizer as text

SETTINGS = settings(max_examples=20, deadline=None)
TEXTS = ['the cat sat on the mat', 'a dog ran to the park!',
         'the dog sat, the cat ran', 'cats and dogs and cats', 'Flu shot 3']
_NAME = st.text(st.characters(blacklist_categories=('Cs',)), min_size=1,
                max_size=12)
_JSON_SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6) |
                 st.floats(allow_nan=False, allow_infinity=False) | _NAME)
CONFIGS = st.dictionaries(
    st.sampled_from(['train', 'optimizer', 'features', 'data']),
    st.dictionaries(st.text('abcdefgh_', min_size=1, max_size=8),
                    _JSON_SCALARS, max_size=4), max_size=4)


@st.composite
def models(draw):
  options = dict(ngrams=draw(st.integers(1, 3)),
                 buckets=draw(st.sampled_from([0, 16, 300])),
                 weighting=draw(st.sampled_from(['tf', 'tfidf'])),
                 min_df=draw(st.integers(1, 2)),
                 shape_ngrams=draw(st.integers(0, 2)))
  featurizer = text.Featurizer(**options).fit(TEXTS)
  num_classes = draw(st.integers(1, 5))
  labels = draw(st.lists(_NAME, min_size=num_classes, max_size=num_classes,
                         unique=True))
  rng = np.random.default_rng(draw(st.integers(0, 2**16)))
  params = linjax.Params(
      W=rng.normal(size=(featurizer.num_features, num_classes)).astype(
          np.float32),
      b=rng.normal(size=num_classes).astype(np.float32))
  return params, featurizer, labels, draw(CONFIGS)


@SETTINGS
@given(model=models())
def test_round_trip(model):
  params, featurizer, labels, config = model
  with tempfile.TemporaryDirectory() as d:
    path = pathlib.Path(d) / 'model'
    saved_model.save(path, params, featurizer, labels, config)
    loaded = saved_model.load(path)
    np.testing.assert_array_equal(loaded.params.W, params.W)
    np.testing.assert_array_equal(loaded.params.b, params.b)
    assert loaded.label_map.names == labels
    assert loaded.config == config
    assert loaded.featurizer.to_dict() == json.loads(json.dumps(
        featurizer.to_dict()))
    np.testing.assert_array_equal(
        loaded.featurizer.transform(TEXTS).to_dense(),
        featurizer.transform(TEXTS).to_dense())


@SETTINGS
@given(model=models(), zero_rows=st.floats(0, 1),
       precision=st.sampled_from(['float32', 'float16', 'int8']),
       int8_scale=st.sampled_from(['row', 'column']),
       magnitude=st.floats(-6, 3))
def test_compact_round_trip(model, zero_rows, precision, int8_scale,
                            magnitude):
  """Any W with any share of all-zero rows: float32 comes back bit for bit,
  float16 within half a unit in the last place, int8 within half a code
  plus the float32 rounding of the loaded weight (code * scale)."""
  params, featurizer, labels, _ = model
  rng = np.random.default_rng(0)
  W = np.asarray(params.W) * np.float32(10.0 ** magnitude)
  W[rng.random(W.shape[0]) < zero_rows] = 0.0
  with tempfile.TemporaryDirectory() as d:
    path = pathlib.Path(d) / 'model'
    saved_model.save(path, linjax.Params(W, params.b), featurizer, labels,
                     precision=precision, int8_scale=int8_scale)
    got = saved_model.load(path).params.W.astype(np.float64)
  err = np.abs(got - W)
  if precision == 'float32':
    np.testing.assert_array_equal(got, W)
  elif precision == 'float16':
    assert np.all(err <= np.maximum(np.abs(W) * 2.0**-11, 2.0**-25))
  else:
    axis = 1 if int8_scale == 'row' else 0
    code = np.max(np.abs(W.astype(np.float64)), axis=axis, keepdims=True) / 127
    # The scale is stored in float32 (relative rounding 2^-24), and the
    # loaded weight q * s is rounded to float32: half a unit in its last
    # place (e.g. W = -2098.2368 at a code of 22.93: 1.2e-4 on top of s / 2).
    rounding = np.spacing(np.maximum(np.abs(W), np.abs(got)).astype(
        np.float32)).astype(np.float64) / 2
    assert np.all(err <= code / 2 * (1 + 2.0**-22) + rounding)
  np.testing.assert_array_equal(got[~W.any(1)], 0.0)


def _leaves(value, path=()):
  """Every (path, scalar) of a JSON value, and (path, container) of empty
  containers, so that each can be edited."""
  if isinstance(value, dict) and value:
    for key, child in value.items():
      yield from _leaves(child, path + (key,))
  elif isinstance(value, list) and value:
    for i, child in enumerate(value):
      yield from _leaves(child, path + (i,))
  else:
    yield path, value


def _edited(value):
  """A different JSON value of the same kind."""
  if isinstance(value, bool):
    return not value
  if isinstance(value, int):
    return value + 1
  if isinstance(value, float):
    return -value if value else 1.0
  if isinstance(value, str):
    return value + 'x'
  if value is None:
    return 0
  if isinstance(value, list):
    return [0]
  return {'x': 0}


@SETTINGS
@given(model=models(), data=st.data())
def test_any_edit_of_the_manifest_is_refused(model, data):
  params, featurizer, labels, config = model
  with tempfile.TemporaryDirectory() as d:
    path = pathlib.Path(d) / 'model'
    saved_model.save(path, params, featurizer, labels, config)
    file = path / 'model.json'
    meta = json.loads(file.read_text(encoding='utf-8'))
    leaves = [p for p, _ in _leaves(meta) if p[0] != 'digest']
    where = data.draw(st.sampled_from(leaves), label='path')
    parent = meta
    for key in where[:-1]:
      parent = parent[key]
    parent[where[-1]] = _edited(parent[where[-1]])
    file.write_text(json.dumps(meta, ensure_ascii=False), encoding='utf-8')
    try:
      saved_model.load(path)
    except saved_model.ModelFileError as e:
      message = str(e)
    else:
      raise AssertionError(f'edit of {where} was accepted')
    assert str(file) in message and '\n' not in message, message
