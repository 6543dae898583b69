"""Saved models and the featurizer's token hash (format version 4).

Format 4 records the featurizer's ``hash`` setting (``poly64`` by default).
A model saved before (format 3, whose featurizer hashed with FNV-1a and
recorded no hash) must still load, with FNV-1a, and predict exactly what it
predicted; `convert` keeps that hash. Checked on a model written by this
test as format 3 was: the manifest of a saved FNV-1a model without the
setting, sealed again.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import linjax
from linjax import model_digest
from linjax import saved_model
from linjax.data import corpus as data
from linjax.text import featurizer as text
from linjax.text import hashing

TEXTS = ['The cat sat on the mat', 'Dogs bark; cats purr!', 'A CAT, a dog',
         'flu season starts', 'Flu shots: CDC says get one', 'the end']
QUERIES = ['a cat and a dog', 'FLU season', 'nothing known here']
LABELS = data.LabelMap(['a', 'b', 'c'])


def _params(num_features, seed=0):
  rng = np.random.default_rng(seed)
  return linjax.Params(
      W=rng.normal(size=(num_features, 3)).astype(np.float32),
      b=rng.normal(size=3).astype(np.float32))


def _scores(params, featurizer, texts):
  """Independent reference: dense features times W plus b, in numpy."""
  x = featurizer.transform(texts).to_dense().astype(np.float64)
  return x @ np.asarray(params.W, np.float64) + np.asarray(params.b)


def _softmax(z):
  z = z - z.max(axis=1, keepdims=True)
  return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def _as_format_3(path):
  """Rewrites a saved model's manifest as format 3 wrote it: no featurizer
  ``hash`` setting, featurizer version 1, sealed again."""
  meta = json.loads((path / 'model.json').read_text())
  meta['format_version'] = 3
  meta['featurizer']['version'] = 1
  del meta['featurizer']['settings']['hash']
  meta['digest'] = model_digest.digest(meta)
  (path / 'model.json').write_text(json.dumps(meta))


def test_new_models_record_poly64_and_format_4(tmp_path):
  featurizer = text.Featurizer(buckets=512).fit(TEXTS)
  params = _params(512)
  saved_model.save(tmp_path / 'm', params, featurizer, LABELS)
  meta = json.loads((tmp_path / 'm' / 'model.json').read_text())
  assert meta['format_version'] == saved_model.FORMAT_VERSION == 4
  assert meta['featurizer']['settings']['hash'] == hashing.POLY64
  loaded = saved_model.load(tmp_path / 'm')
  assert loaded.featurizer.hash == hashing.POLY64
  np.testing.assert_allclose(loaded.predict_proba(QUERIES),
                             _softmax(_scores(params, featurizer, QUERIES)),
                             rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('buckets', [512, 2**20])
def test_a_format_3_model_loads_with_fnv1a_and_predicts_as_before(
    tmp_path, buckets):
  old = text.Featurizer(buckets=buckets, hash=hashing.FNV1A).fit(TEXTS)
  params = _params(buckets)
  path = tmp_path / 'm'
  saved_model.save(path, params, old, LABELS)
  _as_format_3(path)
  loaded = saved_model.load(path)
  assert loaded.meta['format_version'] == 3
  assert loaded.featurizer.hash == hashing.FNV1A
  np.testing.assert_allclose(loaded.predict_proba(QUERIES),
                             _softmax(_scores(params, old, QUERIES)),
                             rtol=1e-5, atol=1e-7)
  # The test can fail: the default hash featurises these texts differently.
  new = text.Featurizer(buckets=buckets).fit(TEXTS)
  assert not np.array_equal(new.transform(QUERIES).ids,
                            old.transform(QUERIES).ids)
  # convert keeps the hash (and writes the current format).
  saved_model.convert(path, tmp_path / 'c')
  again = saved_model.load(tmp_path / 'c')
  assert again.meta['format_version'] == saved_model.FORMAT_VERSION
  assert again.featurizer.hash == hashing.FNV1A
  np.testing.assert_array_equal(again.predict_proba(QUERIES),
                                loaded.predict_proba(QUERIES))


def test_a_newer_format_is_refused_in_one_line(tmp_path):
  saved_model.save(tmp_path / 'm', _params(64),
                   text.Featurizer(buckets=64).fit(TEXTS), LABELS)
  meta = json.loads((tmp_path / 'm' / 'model.json').read_text())
  meta['format_version'] = saved_model.FORMAT_VERSION + 1
  meta['digest'] = model_digest.digest(meta)
  (tmp_path / 'm' / 'model.json').write_text(json.dumps(meta))
  with pytest.raises(saved_model.ModelFileError) as e:
    saved_model.load(tmp_path / 'm')
  message = str(e.value)
  assert '\n' not in message and 'upgrade linjax' in message
  assert f'version {saved_model.FORMAT_VERSION + 1}' in message


def test_featurizer_dicts_without_a_hash_are_fnv1a():
  f = text.Featurizer(buckets=256, hash=hashing.FNV1A).fit(TEXTS)
  d = json.loads(json.dumps(f.to_dict()))
  assert d['settings']['hash'] == hashing.FNV1A and d['version'] == 2
  del d['settings']['hash']
  d['version'] = 1
  g = text.Featurizer.from_dict(d)
  assert g.hash == hashing.FNV1A
  for u, v in zip(g.transform(QUERIES)[:3], f.transform(QUERIES)[:3]):
    np.testing.assert_array_equal(u, v)


def test_a_featurizer_pickled_before_the_hash_setting_is_fnv1a():
  # Its state as pickled then: settings and options without 'hash', names
  # in '_names', the training texts pending in '_pending_names'.
  fnv = text.Featurizer(buckets=256, hash=hashing.FNV1A).fit(TEXTS)
  state = dict(fnv.__dict__)
  for key in ('_name_texts', '_named', '_named_k', '_old_names', '_prepared',
              'hash'):
    state.pop(key)
  state['_settings'] = {k: v for k, v in state['_settings'].items()
                        if k != 'hash'}
  state['_names'], state['_pending_names'] = None, None
  old = text.Featurizer.__new__(text.Featurizer)
  old.__setstate__(state)
  assert old.hash == old.options.hash == hashing.FNV1A
  for u, v in zip(old.transform(QUERIES)[:3], fnv.transform(QUERIES)[:3]):
    np.testing.assert_array_equal(u, v)
  assert old.to_dict()['settings']['hash'] == hashing.FNV1A
