"""Saved models: round trip in a new process, and every kind of damage.

The digest is recomputed here from the format's description in the module
docstring (`_spec_seal`), independently of `saved_model`'s own code, and
format version 2 (dense .npy arrays) is written here by hand
(`_write_version_2`) to check that such models still load.
The compact storage itself (precisions, error bounds) is tested in
tests/test_compact_models.py.
"""

import hashlib
import hmac
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import linjax
from linjax.data import corpus as data
from linjax import saved_model
from linjax import tensor_file
from linjax.text import featurizer as text
from linjax.saved_model import ModelFileError

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXTS = ['the cat sat on the mat', 'a dog ran to the park!',
         'the dog sat, the cat ran', 'cats and dogs and cats']
QUERIES = ['the cat ran to the mat', 'dogs!', '', 'never seen words']
ARRAYS = 'arrays.safetensors'
MODEL_JSON = 'model.json'


def _model(buckets=256, seed=0):
  featurizer = text.Featurizer(ngrams=2, buckets=buckets).fit(TEXTS)
  rng = np.random.default_rng(seed)
  params = linjax.Params(
      W=rng.normal(size=(featurizer.num_features, 3)).astype(np.float32),
      b=rng.normal(size=3).astype(np.float32))
  return params, featurizer


CONFIG = dict(train=dict(epochs=3, l2=0.0), features=dict(ngrams=2))


def _save(path, buckets=256, seed=0, **kwargs):
  params, featurizer = _model(buckets, seed)
  saved_model.save(path, params, featurizer, data.LabelMap(['neg', 'neu',
                                                            'pos']),
                   CONFIG, extra=dict(test_accuracy=0.5), **kwargs)
  return params, featurizer


def _scores(params, featurizer, texts):
  """Independent reference: dense features times W plus b, in numpy."""
  x = featurizer.transform(texts).to_dense().astype(np.float64)
  return x @ np.asarray(params.W, np.float64) + np.asarray(params.b)


def test_layout_and_manifest(tmp_path):
  path = tmp_path / 'model'
  params, _ = _save(path)
  assert sorted(p.name for p in path.iterdir()) == [ARRAYS, MODEL_JSON]
  meta = json.loads((path / MODEL_JSON).read_text())
  assert meta['format'] == 'linjax.saved_model' and meta['format_version'] == 4
  assert meta['loss'] == 'softmax'
  assert meta['linjax_version'] == linjax.__version__
  assert meta['labels'] == ['neg', 'neu', 'pos']
  assert meta['config']['train']['epochs'] == 3
  assert meta['extra'] == {'test_accuracy': 0.5}
  assert meta['weights'] == dict(shape=[256, 3], rows=256,
                                 precision='float32', int8_scale=None)
  raw = (path / ARRAYS).read_bytes()
  assert meta['arrays']['file'] == ARRAYS
  assert meta['arrays']['bytes'] == len(raw)
  assert meta['arrays']['sha256'] == hashlib.sha256(raw).hexdigest()
  # A plain safetensors file, read here from its documented layout.
  (size,) = struct.unpack('<Q', raw[:8])
  header = json.loads(raw[8:8 + size])
  assert header['__metadata__']['format_version'] == '4'
  entry = header['W.rows']
  assert entry['dtype'] == 'F32' and entry['shape'] == [256, 3]
  begin, end = entry['data_offsets']
  rows = np.frombuffer(raw[8 + size + begin:8 + size + end], '<f4')
  np.testing.assert_array_equal(rows.reshape(256, 3), params.W)
  assert {k: v['shape'] for k, v in meta['arrays']['tensors'].items()
          if not k.startswith('featurizer/')} == {
              'W.row_ids': [256], 'W.rows': [256, 3], 'b': [3]}
  # The featurizer's long lists are arrays, referenced from the JSON.
  ids = meta['featurizer']['document_frequency']['ids']
  assert ids == {'$tensor': 'featurizer/document_frequency/ids',
                 'encoding': 'delta'}
  # No temporary directories left behind.
  assert sorted(p.name for p in tmp_path.iterdir()) == ['model']
  # The digest is the documented one, and covers labels and settings.
  assert meta['digest'] == _spec_seal(meta)
  assert meta['digest']['algorithm'] == 'sha256'
  sections = meta['digest']['sections']
  for path in ('labels', 'loss', 'format_version', 'arrays.sha256',
               'weights.precision', 'featurizer.settings.ngrams',
               'featurizer.settings.buckets', 'config.train.epochs'):
    assert path in sections, path


def test_round_trip_in_new_process(tmp_path):
  path = tmp_path / 'model'
  params, featurizer = _save(path)
  want = _scores(params, featurizer, QUERIES)
  script = (
      'import json, sys, numpy as np, jax.numpy as jnp\n'
      'import linjax\n'
      'from linjax import saved_model\n'
      'm = saved_model.load(sys.argv[1])\n'
      'queries = json.loads(sys.argv[2])\n'
      'ids, w = m.featurizer.transform(queries).to_padded()\n'
      'p = linjax.Params(jnp.asarray(m.params.W), jnp.asarray(m.params.b))\n'
      'z = linjax.logits(p, linjax.SparseFeatures(jnp.asarray(ids), '
      'jnp.asarray(w)))\n'
      'print(json.dumps(dict(z=np.asarray(z).tolist(), '
      'labels=m.label_map.names, config=m.config)))\n')
  out = subprocess.run([sys.executable, '-c', script, str(path),
                        json.dumps(QUERIES)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120, check=True)
  got = json.loads(out.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(got['z'], want, rtol=1e-5, atol=1e-5)
  assert got['labels'] == ['neg', 'neu', 'pos']
  assert got['config']['features']['ngrams'] == 2


def test_load_in_process(tmp_path):
  path = tmp_path / 'model'
  params, featurizer = _save(path)
  loaded = saved_model.load(path)
  np.testing.assert_array_equal(loaded.params.W, params.W)
  np.testing.assert_array_equal(loaded.params.b, params.b)
  assert loaded.featurizer.to_dict() == featurizer.to_dict()
  assert loaded.label_map.names == ['neg', 'neu', 'pos']
  assert loaded.precision == 'float32'


def test_save_replaces_atomically(tmp_path, monkeypatch):
  path = tmp_path / 'model'
  params, _ = _save(path, seed=0)

  def crash(*args, **kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(saved_model, '_write_json', crash)
  with pytest.raises(OSError, match='disk full'):
    _save(path, seed=1)
  monkeypatch.undo()
  # The old model is intact and no partial directory is left.
  np.testing.assert_array_equal(saved_model.load(path).params.W, params.W)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['model']
  new_params, _ = _save(path, seed=1)
  np.testing.assert_array_equal(saved_model.load(path).params.W,
                                new_params.W)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['model']


def test_refuses_to_replace_foreign_directory(tmp_path):
  (tmp_path / 'precious.txt').write_text('keep me')
  with pytest.raises(ValueError, match='not a saved model'):
    _save(tmp_path)
  assert (tmp_path / 'precious.txt').read_text() == 'keep me'


def test_bad_precision_is_refused_before_writing(tmp_path):
  for kwargs, message in ((dict(precision='int4'), 'precision must be one'),
                          (dict(precision='int8', int8_scale='block'),
                           'int8_scale must be one')):
    with pytest.raises(ValueError, match=message):
      _save(tmp_path / 'model', **kwargs)
  assert not list(tmp_path.iterdir())


def _canonical(value):
  return json.dumps(value, sort_keys=True, separators=(',', ':'),
                    ensure_ascii=False).encode('utf-8')


def _spec_seal(meta, key=None):
  """The digest record of ``meta`` as the module docstring specifies it."""
  sections = {}

  def visit(path, value, depth):
    sections[path] = hashlib.sha256(_canonical(value)).hexdigest()
    if isinstance(value, dict) and depth < 3:
      for k, v in value.items():
        visit(f'{path}.{k}', v, depth + 1)

  for k, v in meta.items():
    if k != 'digest':
      visit(k, v, 1)
  if key is None:
    return dict(algorithm='sha256', sections=sections,
                value=hashlib.sha256(_canonical(sections)).hexdigest())
  return dict(algorithm='hmac-sha256', sections=sections,
              value=hmac.new(key.encode(), _canonical(sections),
                             hashlib.sha256).hexdigest())


def _rewrite_manifest(path, edit, seal=False):
  """Applies ``edit`` to model.json; ``seal``: then recomputes the digest, as
  a careless tool (or a forger) would, so the checks after it are reached."""
  meta = json.loads((path / MODEL_JSON).read_text())
  edit(meta)
  if seal:
    meta['digest'] = _spec_seal(meta)
  (path / MODEL_JSON).write_text(json.dumps(meta))


def _sealed(edit):
  return lambda path: _rewrite_manifest(path, edit, seal=True)


def _unsealed(edit):
  return lambda path: _rewrite_manifest(path, edit)


def _read_arrays(path):
  arrays, _ = tensor_file.decode((path / ARRAYS).read_bytes())
  return arrays


def _rewrite_arrays(edit, relist=False, raw_edit=None, meta_edit=None):
  """Rewrites arrays.safetensors with ``edit(arrays)`` applied, then its size
  and checksum in model.json, resealed (``relist``: its tensors list too;
  ``meta_edit``: another edit of the manifest)."""
  def damage(path):
    arrays = _read_arrays(path)
    edit(arrays)
    raw = tensor_file.encode(arrays)
    if raw_edit is not None:
      raw = raw_edit(raw)
    (path / ARRAYS).write_bytes(raw)

    def update(meta):
      meta['arrays'].update(bytes=len(raw),
                            sha256=hashlib.sha256(raw).hexdigest())
      if relist:
        meta['arrays']['tensors'] = {
            k: dict(dtype=str(v.dtype), shape=list(v.shape))
            for k, v in arrays.items()}
      if meta_edit is not None:
        meta_edit(meta)
    _rewrite_manifest(path, update, seal=True)
  return damage


def _set_array(name, value):
  return lambda arrays: arrays.__setitem__(name, value)


def _truncate(path, name=ARRAYS):
  file = path / name
  file.write_bytes(file.read_bytes()[:-100])


def _flip_byte(path, name=ARRAYS):
  file = path / name
  raw = bytearray(file.read_bytes())
  raw[-5] ^= 0xFF
  file.write_bytes(bytes(raw))


def _truncated_manifest(path):
  file = path / MODEL_JSON
  file.write_text(file.read_text()[:200])


def _swap_labels(meta):
  meta['labels'][0], meta['labels'][2] = meta['labels'][2], meta['labels'][0]


def _set_ngrams(n):
  return lambda meta: meta['featurizer']['settings'].update(ngrams=n)


def _set(key, value):
  return lambda meta: meta.update({key: value})


def _drop(*keys):
  def edit(meta):
    for key in keys[:-1]:
      meta = meta[key]
    del meta[keys[-1]]
  return edit


def _edit_digest_value(meta):
  meta['digest']['value'] = '0' * 64


def _weights(**changes):
  return lambda meta: meta['weights'].update(changes)


def _bad_header(raw):
  return raw[:8] + b'[' + raw[9:]


def _deep_header(raw):
  """A header of nested lists deeper than Python's JSON parser recurses."""
  import struct  # pylint: disable=g-import-not-at-top
  deep = b'[' * 50000
  return struct.pack('<Q', len(deep)) + deep


def _deep_manifest(path):
  (path / MODEL_JSON).write_text('[' * 100000)


def _drop_last_row(arrays):
  arrays['W.rows'] = arrays['W.rows'][:255]
  arrays['W.row_ids'] = arrays['W.row_ids'][:255]


def _drop_ref(arrays):
  del arrays['featurizer/document_frequency/ids']


DAMAGE = [
    # Files missing, truncated or flipped.
    (lambda p: os.remove(p / ARRAYS), ARRAYS, 'missing'),
    (lambda p: os.remove(p / MODEL_JSON), MODEL_JSON, 'missing'),
    (_truncate, ARRAYS, 'truncated or altered'),
    (_flip_byte, ARRAYS, 'checksum mismatch'),
    (_truncated_manifest, MODEL_JSON, 'not valid JSON'),
    (_deep_manifest, MODEL_JSON, 'not valid JSON'),   # not a RecursionError
    # Edits of the manifest, caught by the digest, naming what changed.
    (_unsealed(_swap_labels), MODEL_JSON,
     'labels differ from those the model was saved with'),
    (_unsealed(_set_ngrams(1)), MODEL_JSON,
     'featurizer.settings.ngrams differs from what the model was saved with'),
    (_unsealed(_set('loss', 'sigmoid')), MODEL_JSON, 'loss differs'),
    (_unsealed(lambda m: m['config']['train'].update(epochs=9)), MODEL_JSON,
     'config.train.epochs differs'),
    (_unsealed(lambda m: m['arrays'].update(bytes=1)), MODEL_JSON,
     'arrays.bytes differs'),
    (_unsealed(_weights(precision='int8')), MODEL_JSON,
     'weights.precision differs'),
    (_unsealed(_set('surprise', 1)), MODEL_JSON, 'surprise was added'),
    (_unsealed(_drop('config')), MODEL_JSON, 'config was removed'),
    (_unsealed(_drop('featurizer', 'settings', 'ngrams')), MODEL_JSON,
     'featurizer.settings.ngrams was removed'),
    (_unsealed(_edit_digest_value), MODEL_JSON,
     'the digest does not match its own record'),
    (_unsealed(_set('digest', 'x')), MODEL_JSON, 'malformed integrity digest'),
    (_unsealed(lambda m: m['digest'].update(algorithm='md5')), MODEL_JSON,
     "unknown digest algorithm 'md5'"),
    # The format's own checks (before the digest).
    (_unsealed(_set('format_version', 99)), MODEL_JSON,
     'unsupported format version 99; this linjax reads versions 2, 3 and 4 (a '
     'newer linjax saved it'),
    (_unsealed(_set('format', 'other')), MODEL_JSON,
     'not a linjax saved model'),
    (_unsealed(_drop('labels')), MODEL_JSON, "missing key 'labels'"),
    (_unsealed(_drop('weights')), MODEL_JSON, "missing key 'weights'"),
    (_unsealed(_drop('digest')), MODEL_JSON, "missing key 'digest'"),
    # Checks after the digest, reached through a resealed manifest and a
    # rewritten array file.
    (_rewrite_arrays(_set_array('b', np.zeros(3, np.float64))), ARRAYS,
     "arrays do not match model.json's list (first difference: 'b')"),
    (_rewrite_arrays(lambda a: None, raw_edit=_bad_header), ARRAYS,
     'not a valid safetensors file: header is not UTF-8 JSON'),
    (_rewrite_arrays(lambda a: None, raw_edit=_deep_header), ARRAYS,
     'not a valid safetensors file: header is not UTF-8 JSON'),
    (_rewrite_arrays(_set_array('W.row_ids', np.arange(1, 257, dtype=np.int32)),
                     relist=True), MODEL_JSON,
     'bad weights: W.row_ids must be ascending ids in [0, 256)'),
    (_rewrite_arrays(_set_array('W.rows', np.zeros((256, 3), np.float16)),
                     relist=True), MODEL_JSON,
     'bad weights: W.rows is float16 and W.row_ids int32, expected float32'),
    (_sealed(_weights(precision='int8', int8_scale='row')), MODEL_JSON,
     'bad weights: W.rows is float32'),
    (_sealed(_weights(rows=3)), MODEL_JSON, 'bad weights: shape'),
    (_sealed(_weights(shape=[255, 3])), MODEL_JSON,
     'bad weights: W.row_ids must be ascending ids in [0, 255)'),
    (_rewrite_arrays(_drop_last_row, relist=True,
                     meta_edit=_weights(shape=[255, 3], rows=255)),
     MODEL_JSON, 'featurizer has 256 features but W has 255 rows'),
    (_rewrite_arrays(_set_array('b', np.zeros(4, np.float32)), relist=True),
     MODEL_JSON, 'W (256, 3) and b (4,) do not form'),
    (_rewrite_arrays(_drop_ref, relist=True), MODEL_JSON,
     "bad featurizer: \"array 'featurizer/document_frequency/ids' is not in"),
    (_sealed(_set('labels', ['a', 'b'])), MODEL_JSON,
     '2 labels but W has 3 classes'),
    (_sealed(_set('labels', ['a', 'a', 'b'])), MODEL_JSON,
     'duplicate label names'),
    (_sealed(_set('labels', ['a', 3, 'b'])), MODEL_JSON,
     'labels must be a list of strings'),
    (_sealed(_set('loss', 'no_such_loss')), MODEL_JSON,
     "trained with loss 'no_such_loss', which cannot be found here: unknown "
     "loss 'no_such_loss'"),
    (_sealed(lambda m: m['arrays'].update(file='../x.safetensors')),
     MODEL_JSON, "bad file entry for array 'arrays.safetensors'"),
    (_sealed(_set_ngrams(0)), MODEL_JSON, 'bad featurizer: features.ngrams'),
    (_sealed(lambda m: m['featurizer'].update(type='x')), MODEL_JSON,
     'bad featurizer: not a saved linjax Featurizer'),
    (_sealed(lambda m: m['featurizer']['settings'].update(buckets=128)),
     MODEL_JSON, 'bad featurizer: index'),
]


def _assert_refused(path, file, message):
  with pytest.raises(ModelFileError) as info:
    saved_model.load(path)
  text_ = str(info.value)
  assert f'{path}/{file}' in text_, text_
  assert message in text_, text_
  assert '\n' not in text_  # one line


@pytest.mark.parametrize('damage,file,message', DAMAGE,
                         ids=[message for _, _, message in DAMAGE])
def test_damaged_model_raises(tmp_path, damage, file, message):
  path = tmp_path / 'model'
  _save(path)
  damage(path)
  _assert_refused(path, file, message)


def test_vocabulary_and_idf_are_sealed(tmp_path):
  path = tmp_path / 'model'
  featurizer = text.Featurizer(ngrams=1, buckets=0,
                               weighting='tfidf').fit(TEXTS)
  f = featurizer.num_features
  saved_model.save(path, linjax.Params(np.zeros((f, 2), np.float32),
                                       np.zeros(2, np.float32)),
                   featurizer, ['x', 'y'])
  saved_model.load(path)
  meta = json.loads((path / MODEL_JSON).read_text())
  assert meta['featurizer']['vocabulary'] and meta['featurizer'][
      'document_frequency']
  for edit, what in (
      (lambda m: m['featurizer']['vocabulary'].reverse(),
       'featurizer.vocabulary differs'),
      (lambda m: m['featurizer']['document_frequency'].update(
          counts=[99] * f), 'featurizer.document_frequency.counts differs'),
      (lambda m: m['featurizer']['document_frequency'].update(num_docs=1),
       'featurizer.document_frequency.num_docs differs')):
    edited = tmp_path / 'edited'
    shutil.copytree(path, edited)
    _rewrite_manifest(edited, edit)
    with pytest.raises(ModelFileError, match=what):
      saved_model.load(edited)
    shutil.rmtree(edited)


def test_keyed_signature(tmp_path, monkeypatch):
  path = tmp_path / 'model'
  monkeypatch.setenv('LINJAX_MODEL_KEY', 'secret one')
  _save(path)
  meta = json.loads((path / MODEL_JSON).read_text())
  assert meta['digest'] == _spec_seal(meta, key='secret one')
  saved_model.load(path)
  monkeypatch.setenv('LINJAX_MODEL_KEY', 'secret two')
  with pytest.raises(ModelFileError, match='signature mismatch'):
    saved_model.load(path)
  monkeypatch.delenv('LINJAX_MODEL_KEY')
  with pytest.raises(ModelFileError, match='the model is signed'):
    saved_model.load(path)
  # A forger without the key swaps labels and recomputes what he can: an
  # unkeyed digest (refused while the key is set), or new section hashes
  # under the old keyed value (a signature mismatch).
  monkeypatch.setenv('LINJAX_MODEL_KEY', 'secret one')
  _rewrite_manifest(path, _swap_labels, seal=True)
  with pytest.raises(ModelFileError, match='LINJAX_MODEL_KEY is set but the '
                     'model is not signed'):
    saved_model.load(path)
  def forge(m):
    m['digest']['algorithm'] = 'hmac-sha256'
  _rewrite_manifest(path, forge)
  with pytest.raises(ModelFileError, match='signature mismatch'):
    saved_model.load(path)


def test_sigmoid_loss_scores_each_label(tmp_path):
  path = tmp_path / 'model'
  featurizer = text.Featurizer(ngrams=2, buckets=256).fit(TEXTS)
  rng = np.random.default_rng(5)
  params = linjax.Params(rng.normal(size=(256, 3)).astype(np.float32),
                         rng.normal(size=3).astype(np.float32))
  saved_model.save(path, params, featurizer, ['a', 'b', 'c'], loss='sigmoid')
  loaded = saved_model.load(path)
  assert loaded.loss == 'sigmoid'
  want = 1 / (1 + np.exp(-_scores(params, featurizer, QUERIES)))
  np.testing.assert_allclose(loaded.predict_proba(QUERIES), want, rtol=1e-5,
                             atol=1e-6)
  with pytest.raises(ValueError, match="unknown loss 'no_such_loss'"):
    saved_model.save(tmp_path / 'm2', params, featurizer, 'abc',
                     loss='no_such_loss')
  assert not (tmp_path / 'm2').exists()


def _reference_sets(proba, names, threshold, top_k=None):
  """Label sets written out plainly: every label >= threshold, sorted by
  probability (then id), cut at top_k."""
  out = []
  for row in proba:
    keep = [(-p, c) for c, p in enumerate(row) if p >= threshold]
    out.append(tuple(names[c] for _, c in sorted(keep)[:top_k]))
  return out


def test_multilabel_predicts_label_sets_at_the_saved_threshold(tmp_path):
  path = tmp_path / 'model'
  featurizer = text.Featurizer(ngrams=2, buckets=256).fit(TEXTS)
  rng = np.random.default_rng(34)   # sets of 2, 1, 1 and 0 labels
  params = linjax.Params(rng.normal(size=(256, 4)).astype(np.float32),
                         rng.normal(size=4).astype(np.float32))
  names = ['w', 'x', 'y', 'z']
  saved_model.save(path, params, featurizer, names, loss='sigmoid',
                   extra=dict(threshold=0.6))
  model = saved_model.load(path)
  assert model.threshold == 0.6
  proba = 1 / (1 + np.exp(-_scores(params, featurizer, QUERIES)))
  want = _reference_sets(proba, names, 0.6)
  assert model.predict(QUERIES) == want        # a tag model predicts sets
  assert model.predict_sets(QUERIES) == want
  assert [len(s) for s in want] == [2, 1, 1, 0]
  for threshold, top_k in ((0.0, 1), (0.0, None), (0.3, 2), (1.0, None)):
    assert model.predict_sets(QUERIES, threshold, top_k) == _reference_sets(
        proba, names, threshold, top_k), (threshold, top_k)
  # top-1 at threshold 0 is the argmax: the single best tag of every text.
  assert [s[0] for s in model.predict_sets(QUERIES, 0.0, 1)] == [
      names[i] for i in proba.argmax(1)]
  with pytest.raises(ValueError, match=r'threshold must be .*0\.6'):
    model.predict_sets(QUERIES, threshold=1.5)
  with pytest.raises(ValueError, match='top_k must be a positive int'):
    model.predict_sets(QUERIES, top_k=0)


def test_multilabel_model_without_saved_threshold_uses_one_half(tmp_path):
  featurizer = text.Featurizer(ngrams=2, buckets=256).fit(TEXTS)
  params = linjax.Params(np.zeros((256, 2), np.float32),
                         np.array([0.1, -0.1], np.float32))  # p 0.525, 0.475
  saved_model.save(tmp_path / 'm', params, featurizer, ['a', 'b'],
                   loss='sigmoid')
  model = saved_model.load(tmp_path / 'm')
  assert model.threshold == 0.5
  assert model.predict(['x', 'y']) == [('a',), ('a',)]


def test_softmax_model_has_no_label_sets(tmp_path):
  _save(tmp_path / 'model')
  model = saved_model.load(tmp_path / 'model')
  assert model.threshold is None
  assert all(isinstance(label, str) for label in model.predict(QUERIES))
  with pytest.raises(ValueError, match="needs a multi-label model.*predict"):
    model.predict_sets(QUERIES)


# -- format version 2 (dense .npy arrays) and 1 ---------------------------------


def _write_version_2(path, params, featurizer, labels, loss='softmax'):
  """A model as linjax wrote it in format version 2, by this test's hand."""
  path.mkdir()
  arrays = {}
  for name, array in (('W', params.W), ('b', params.b)):
    np.save(path / f'{name}.npy', np.asarray(array, np.float32))
    raw = (path / f'{name}.npy').read_bytes()
    arrays[name] = dict(file=f'{name}.npy', shape=list(np.shape(array)),
                        dtype='float32', bytes=len(raw),
                        sha256=hashlib.sha256(raw).hexdigest())
  meta = dict(format='linjax.saved_model', format_version=2,
              linjax_version='0.1.0', created='2026-11-01T00:00:00+00:00',
              loss=loss, arrays=arrays, labels=labels,
              featurizer=json.loads(json.dumps(featurizer.to_dict())),
              config=CONFIG, extra={})
  meta['digest'] = _spec_seal(meta)
  (path / MODEL_JSON).write_text(json.dumps(meta, indent=1))


def _version_2(path, seed=0):
  params, featurizer = _model(seed=seed)
  _write_version_2(path, params, featurizer, ['neg', 'neu', 'pos'])
  return params, featurizer


def test_version_2_still_loads_and_converts(tmp_path):
  path = tmp_path / 'model'
  params, featurizer = _version_2(path)
  loaded = saved_model.load(path)
  assert loaded.meta['format_version'] == 2 and loaded.precision == 'float32'
  np.testing.assert_array_equal(loaded.params.W, params.W)
  np.testing.assert_array_equal(loaded.params.b, params.b)
  assert loaded.featurizer.to_dict() == featurizer.to_dict()
  assert loaded.config == CONFIG
  saved_model.convert(path, path)  # in place, to version 4
  assert sorted(p.name for p in path.iterdir()) == [ARRAYS, MODEL_JSON]
  again = saved_model.load(path)
  assert again.meta['format_version'] == 4 and again.config == CONFIG
  np.testing.assert_array_equal(again.params.W, params.W)
  np.testing.assert_allclose(again.predict_proba(QUERIES),
                             loaded.predict_proba(QUERIES), rtol=0, atol=0)


def _wrong_shape(path):
  """W.npy of another shape than its (old) manifest entry says."""
  np.save(path / 'W.npy', np.zeros((255, 3), np.float32))
  raw = (path / 'W.npy').read_bytes()
  _rewrite_manifest(path, lambda m: m['arrays']['W'].update(
      bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest()), seal=True)


def _pickled_array(path):
  np.save(path / 'b.npy', np.array([{'x': 1}, 2, 3], dtype=object),
          allow_pickle=True)
  raw = (path / 'b.npy').read_bytes()
  _rewrite_manifest(path, lambda m: m['arrays']['b'].update(
      bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest()), seal=True)


DAMAGE_V2 = [
    (lambda p: os.remove(p / 'W.npy'), 'W.npy', 'missing'),
    (lambda p: _truncate(p, 'W.npy'), 'W.npy', 'truncated'),
    (lambda p: _flip_byte(p, 'W.npy'), 'W.npy', 'checksum mismatch'),
    (_unsealed(_swap_labels), MODEL_JSON, 'labels differ'),
    (_unsealed(lambda m: m['arrays']['W'].update(bytes=1)), MODEL_JSON,
     'arrays.W.bytes differs'),
    (_wrong_shape, 'W.npy', 'wrong shape [255, 3], expected [256, 3]'),
    (_pickled_array, 'b.npy', 'unreadable array'),
    (_sealed(_drop('arrays', 'b')), MODEL_JSON, "no entry for array 'b'"),
    (_sealed(_drop('loss')), MODEL_JSON, "missing key 'loss'"),
]


@pytest.mark.parametrize('damage,file,message', DAMAGE_V2,
                         ids=[message for _, _, message in DAMAGE_V2])
def test_damaged_version_2_model_raises(tmp_path, damage, file, message):
  path = tmp_path / 'model'
  _version_2(path)
  damage(path)
  _assert_refused(path, file, message)


def _downgrade_to_version_1(path):
  """model.json as linjax wrote it before the digest (format version 1)."""
  def edit(meta):
    del meta['digest'], meta['loss']
    meta['format_version'] = 1
  _rewrite_manifest(path, edit)


def test_version_1_is_refused_until_upgraded(tmp_path):
  path = tmp_path / 'model'
  params, featurizer = _version_2(path)
  _downgrade_to_version_1(path)
  with pytest.raises(ModelFileError, match='format version 1 has no integrity '
                     'digest.*saved_model.upgrade'):
    saved_model.load(path)
  saved_model.upgrade(path)
  loaded = saved_model.load(path)
  assert loaded.meta['format_version'] == 2 and loaded.loss == 'softmax'
  np.testing.assert_allclose(
      loaded.predict_proba(QUERIES).argmax(1),
      _scores(params, featurizer, QUERIES).argmax(1))
  with pytest.raises(ModelFileError, match='unsupported format version 2; '
                     'this linjax reads version 1'):
    saved_model.upgrade(path)  # nothing to upgrade
  # A version-1 model whose array was damaged is not sealed.
  other = tmp_path / 'other'
  _version_2(other)
  _downgrade_to_version_1(other)
  _flip_byte(other, 'W.npy')
  before = (other / MODEL_JSON).read_text()
  with pytest.raises(ModelFileError, match='W.npy: checksum mismatch'):
    saved_model.upgrade(other)
  assert (other / MODEL_JSON).read_text() == before


def test_not_a_model(tmp_path):
  with pytest.raises(ModelFileError, match='not a directory'):
    saved_model.load(tmp_path / 'nothing')
