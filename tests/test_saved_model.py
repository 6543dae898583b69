"""Saved models: round trip in a new process, and every kind of damage."""

import hashlib
import json
import os
import pathlib
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
  assert meta['format'] == 'linjax.saved_model' and meta['format_version'] == 1
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


def _rewrite_manifest(path, edit):
  meta = json.loads((path / 'model.json').read_text())
  edit(meta)
  (path / 'model.json').write_text(json.dumps(meta))


def _reseal(path, name):
  """Updates size and checksum of an array file after rewriting it."""
  def edit(meta):
    file = path / f'{name}.npy'
    meta['arrays'][name]['bytes'] = file.stat().st_size
    meta['arrays'][name]['sha256'] = hashlib.sha256(
        file.read_bytes()).hexdigest()
  _rewrite_manifest(path, edit)


def _truncate(path):
  file = path / 'W.npy'
  file.write_bytes(file.read_bytes()[:-100])


def _flip_byte(path):
  file = path / 'W.npy'
  raw = bytearray(file.read_bytes())
  raw[-5] ^= 0xFF
  file.write_bytes(bytes(raw))


def _wrong_shape(path):
  np.save(path / 'W.npy', np.zeros((255, 3), np.float32))
  _reseal(path, 'W')


def _wrong_dtype(path):
  np.save(path / 'b.npy', np.zeros(3, np.float64))
  _reseal(path, 'b')


def _pickled_array(path):
  np.save(path / 'b.npy', np.array([{'x': 1}, 2, 3], dtype=object),
          allow_pickle=True)
  _reseal(path, 'b')


def _future_version(path):
  _rewrite_manifest(path, lambda m: m.update(format_version=99))


def _truncated_manifest(path):
  file = path / 'model.json'
  file.write_text(file.read_text()[:200])


def _label_count(path):
  _rewrite_manifest(path, lambda m: m.update(labels=['a', 'b']))


DAMAGE = [
    (lambda p: os.remove(p / 'W.npy'), 'W.npy', 'missing'),
    (lambda p: os.remove(p / 'model.json'), 'model.json', 'missing'),
    (_truncate, 'W.npy', 'truncated'),
    (_flip_byte, 'W.npy', 'checksum mismatch'),
    (_wrong_shape, 'W.npy', 'wrong shape [255, 3], expected [256, 3]'),
    (_wrong_dtype, 'b.npy', 'wrong dtype float64'),
    (_pickled_array, 'b.npy', 'unreadable array'),
    (_future_version, 'model.json', 'unsupported format version 99'),
    (_truncated_manifest, 'model.json', 'not valid JSON'),
    (_label_count, 'model.json', '2 labels but W has 3 classes'),
]


@pytest.mark.parametrize('damage,file,message', DAMAGE)
def test_damaged_model_raises(tmp_path, damage, file, message):
  path = tmp_path / 'model'
  _save(path)
  damage(path)
  with pytest.raises(ModelFileError) as info:
    saved_model.load(path)
  assert file in str(info.value)
  assert message in str(info.value)


def test_not_a_model(tmp_path):
  with pytest.raises(ModelFileError, match='not a directory'):
    saved_model.load(tmp_path / 'nothing')
