"""Saved models: round trip in a new process, and every kind of damage.

The digest is recomputed here from the format's description in the module
docstring (`_spec_seal`), independently of `saved_model`'s own code.
"""

import hashlib
import hmac
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import linjax
from linjax.data import corpus as data
from linjax import saved_model
from linjax.text import featurizer as text
from linjax.saved_model import ModelFileError

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXTS = ['the cat sat on the mat', 'a dog ran to the park!',
         'the dog sat, the cat ran', 'cats and dogs and cats']
QUERIES = ['the cat ran to the mat', 'dogs!', '', 'never seen words']


def _save(path, buckets=256, seed=0):
  featurizer = text.Featurizer(ngrams=2, buckets=buckets).fit(TEXTS)
  rng = np.random.default_rng(seed)
  params = linjax.Params(
      W=rng.normal(size=(featurizer.num_features, 3)).astype(np.float32),
      b=rng.normal(size=3).astype(np.float32))
  labels = data.LabelMap(['neg', 'neu', 'pos'])
  config = dict(train=dict(epochs=3, l2=0.0), features=dict(ngrams=2))
  saved_model.save(path, params, featurizer, labels, config,
                   extra=dict(test_accuracy=0.5))
  return params, featurizer


def _scores(params, featurizer, texts):
  """Independent reference: dense features times W plus b, in numpy."""
  x = featurizer.transform(texts).to_dense().astype(np.float64)
  return x @ np.asarray(params.W, np.float64) + np.asarray(params.b)


def test_layout_and_manifest(tmp_path):
  path = tmp_path / 'model'
  _save(path)
  assert sorted(p.name for p in path.iterdir()) == ['W.npy', 'b.npy',
                                                    'model.json']
  meta = json.loads((path / 'model.json').read_text())
  assert meta['format'] == 'linjax.saved_model' and meta['format_version'] == 2
  assert meta['loss'] == 'softmax'
  assert meta['linjax_version'] == linjax.__version__
  assert meta['labels'] == ['neg', 'neu', 'pos']
  assert meta['config']['train']['epochs'] == 3
  assert meta['extra'] == {'test_accuracy': 0.5}
  assert meta['arrays']['W']['shape'] == [256, 3]
  assert meta['arrays']['W']['dtype'] == 'float32'
  want = hashlib.sha256((path / 'W.npy').read_bytes()).hexdigest()
  assert meta['arrays']['W']['sha256'] == want
  # Plain .npy: loadable without pickle by anyone.
  np.load(path / 'W.npy', allow_pickle=False)
  # No temporary directories left behind.
  assert sorted(p.name for p in tmp_path.iterdir()) == ['model']
  # The digest is the documented one, and covers labels and settings.
  assert meta['digest'] == _spec_seal(meta)
  assert meta['digest']['algorithm'] == 'sha256'
  sections = meta['digest']['sections']
  for path in ('labels', 'loss', 'format_version', 'arrays.W.sha256',
               'featurizer.settings.ngrams', 'featurizer.settings.buckets',
               'config.train.epochs'):
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


def test_save_replaces_atomically(tmp_path, monkeypatch):
  path = tmp_path / 'model'
  params, _ = _save(path, seed=0)

  def crash(*args, **kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(np, 'save', crash)
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
  meta = json.loads((path / 'model.json').read_text())
  edit(meta)
  if seal:
    meta['digest'] = _spec_seal(meta)
  (path / 'model.json').write_text(json.dumps(meta))


def _reseal(path, name):
  """Updates size and checksum of an array file after rewriting it."""
  def edit(meta):
    file = path / f'{name}.npy'
    meta['arrays'][name]['bytes'] = file.stat().st_size
    meta['arrays'][name]['sha256'] = hashlib.sha256(
        file.read_bytes()).hexdigest()
    meta['arrays'][name]['shape'] = list(np.load(file,
                                                 allow_pickle=True).shape)
  _rewrite_manifest(path, edit, seal=True)


def _sealed(edit):
  return lambda path: _rewrite_manifest(path, edit, seal=True)


def _unsealed(edit):
  return lambda path: _rewrite_manifest(path, edit)


def _truncate(path):
  file = path / 'W.npy'
  file.write_bytes(file.read_bytes()[:-100])


def _flip_byte(path):
  file = path / 'W.npy'
  raw = bytearray(file.read_bytes())
  raw[-5] ^= 0xFF
  file.write_bytes(bytes(raw))


def _swap_array_files(path):
  w, b = (path / 'W.npy').read_bytes(), (path / 'b.npy').read_bytes()
  (path / 'W.npy').write_bytes(b)
  (path / 'b.npy').write_bytes(w)


def _wrong_shape(path):
  """W.npy of another shape than its (old) manifest entry says."""
  np.save(path / 'W.npy', np.zeros((255, 3), np.float32))
  def edit(meta):
    file = path / 'W.npy'
    meta['arrays']['W']['bytes'] = file.stat().st_size
    meta['arrays']['W']['sha256'] = hashlib.sha256(
        file.read_bytes()).hexdigest()
  _rewrite_manifest(path, edit, seal=True)


def _wrong_dtype(path):
  np.save(path / 'b.npy', np.zeros(3, np.float64))
  _reseal(path, 'b')


def _pickled_array(path):
  np.save(path / 'b.npy', np.array([{'x': 1}, 2, 3], dtype=object),
          allow_pickle=True)
  _reseal(path, 'b')


def _features_vs_W(path):
  """W and its entry consistent, but 255 rows for a 256-bucket featurizer."""
  np.save(path / 'W.npy', np.zeros((255, 3), np.float32))
  _reseal(path, 'W')


def _W_vs_b(path):
  np.save(path / 'b.npy', np.zeros(4, np.float32))
  _reseal(path, 'b')


def _truncated_manifest(path):
  file = path / 'model.json'
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


MODEL_JSON = 'model.json'
DAMAGE = [
    # Files missing, truncated, flipped or swapped.
    (lambda p: os.remove(p / 'W.npy'), 'W.npy', 'missing'),
    (lambda p: os.remove(p / 'model.json'), MODEL_JSON, 'missing'),
    (_truncate, 'W.npy', 'truncated'),
    (_flip_byte, 'W.npy', 'checksum mismatch'),
    (_swap_array_files, 'W.npy', 'truncated or altered'),
    (_truncated_manifest, MODEL_JSON, 'not valid JSON'),
    # Edits of the manifest, caught by the digest, naming what changed.
    (_unsealed(_swap_labels), MODEL_JSON,
     'labels differ from those the model was saved with'),
    (_unsealed(_set_ngrams(1)), MODEL_JSON,
     'featurizer.settings.ngrams differs from what the model was saved with'),
    (_unsealed(_set('loss', 'sigmoid')), MODEL_JSON, 'loss differs'),
    (_unsealed(lambda m: m['config']['train'].update(epochs=9)), MODEL_JSON,
     'config.train.epochs differs'),
    (_unsealed(lambda m: m['arrays']['W'].update(bytes=1)), MODEL_JSON,
     'arrays.W.bytes differs'),
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
     'unsupported format version 99'),
    (_unsealed(_set('format', 'other')), MODEL_JSON,
     'not a linjax saved model'),
    (_unsealed(_drop('labels')), MODEL_JSON, "missing key 'labels'"),
    (_unsealed(_drop('digest')), MODEL_JSON, "missing key 'digest'"),
    # Checks after the digest, reached through a resealed manifest.
    (_wrong_shape, 'W.npy', 'wrong shape [255, 3], expected [256, 3]'),
    (_wrong_dtype, 'b.npy', 'wrong dtype float64'),
    (_pickled_array, 'b.npy', 'unreadable array'),
    (_features_vs_W, MODEL_JSON, 'featurizer has 256 features but W has 255 '
     'rows'),
    (_W_vs_b, MODEL_JSON, 'W (256, 3) and b (4,) do not form'),
    (_sealed(_set('labels', ['a', 'b'])), MODEL_JSON,
     '2 labels but W has 3 classes'),
    (_sealed(_set('labels', ['a', 'a', 'b'])), MODEL_JSON,
     'duplicate label names'),
    (_sealed(_set('labels', ['a', 3, 'b'])), MODEL_JSON,
     'labels must be a list of strings'),
    (_sealed(_set('loss', 'hinge')), MODEL_JSON, "unknown loss 'hinge'"),
    (_sealed(_drop('arrays', 'b')), MODEL_JSON, "no entry for array 'b'"),
    (_sealed(lambda m: m['arrays']['W'].update(file='../W.npy')), MODEL_JSON,
     "bad file entry for array 'W'"),
    (_sealed(_set_ngrams(0)), MODEL_JSON, 'bad featurizer: features.ngrams'),
    (_sealed(lambda m: m['featurizer'].update(type='x')), MODEL_JSON,
     'bad featurizer: not a saved linjax Featurizer'),
    (_sealed(lambda m: m['featurizer']['settings'].update(buckets=128)),
     MODEL_JSON, 'bad featurizer: index'),
]


@pytest.mark.parametrize('damage,file,message', DAMAGE,
                         ids=[message for _, _, message in DAMAGE])
def test_damaged_model_raises(tmp_path, damage, file, message):
  path = tmp_path / 'model'
  _save(path)
  damage(path)
  with pytest.raises(ModelFileError) as info:
    saved_model.load(path)
  text = str(info.value)
  assert f'{path}/{file}' in text or (file == 'W.npy' and 'W.npy' in text)
  assert message in text
  assert '\n' not in text  # one line


def test_vocabulary_and_idf_are_sealed(tmp_path):
  path = tmp_path / 'model'
  featurizer = text.Featurizer(ngrams=1, buckets=0,
                               weighting='tfidf').fit(TEXTS)
  f = featurizer.num_features
  saved_model.save(path, linjax.Params(np.zeros((f, 2), np.float32),
                                       np.zeros(2, np.float32)),
                   featurizer, ['x', 'y'])
  saved_model.load(path)
  meta = json.loads((path / 'model.json').read_text())
  assert meta['featurizer']['vocabulary'] and meta['featurizer'][
      'document_frequency']
  for edit, what in (
      (lambda m: m['featurizer']['vocabulary'].reverse(),
       'featurizer.vocabulary differs'),
      (lambda m: m['featurizer']['document_frequency']['counts'].__setitem__(
          0, 99), 'featurizer.document_frequency.counts differs'),
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
  meta = json.loads((path / 'model.json').read_text())
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
  with pytest.raises(ValueError, match='loss must be one of'):
    saved_model.save(tmp_path / 'm2', params, featurizer, 'abc', loss='hinge')


def _downgrade_to_version_1(path):
  """model.json as linjax wrote it before the digest (format version 1)."""
  def edit(meta):
    del meta['digest'], meta['loss']
    meta['format_version'] = 1
  _rewrite_manifest(path, edit)


def test_version_1_is_refused_until_upgraded(tmp_path):
  path = tmp_path / 'model'
  params, featurizer = _save(path)
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
  _save(other)
  _downgrade_to_version_1(other)
  _flip_byte(other)
  before = (other / 'model.json').read_text()
  with pytest.raises(ModelFileError, match='W.npy: checksum mismatch'):
    saved_model.upgrade(other)
  assert (other / 'model.json').read_text() == before


def test_not_a_model(tmp_path):
  with pytest.raises(ModelFileError, match='not a directory'):
    saved_model.load(tmp_path / 'nothing')
