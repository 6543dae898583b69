"""The runner's refit on train + validation (linjax/cli/refit.py), against the
library's `fit` run by hand on the same splits."""

import dataclasses

import numpy as np
import pytest

from linjax import saved_model
from linjax.cli import config_check
from linjax.cli import run_data
from linjax.cli import train as train_runner
from linjax.cli.configs import default
from linjax.engine import training
from linjax.text import csr
from linjax.text.featurizer import Featurizer
from test_runners import _write_tsv


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  base = tmp_path_factory.mktemp('refit')
  return (_write_tsv(base / 'train.tsv', 200, 0),
          _write_tsv(base / 'test.tsv', 60, 1))


def _config(corpus, **train):
  config = default.get_config()
  config.data.train, config.data.test = map(str, corpus)
  config.train.gradcheck = False
  config.train.checkpoint_every = 0
  config.train.epochs = 3
  for key, value in train.items():
    config.train[key] = value
  return config


def _by_hand(config):
  """The first fit (train split, validation watched) by the library."""
  options = config_check.validate(config)
  splits = run_data.load_splits(config)
  featurizer = Featurizer.from_options(options.features)
  x = featurizer.fit_transform(splits.train_texts)
  val_x = featurizer.transform(splits.val_texts)
  first = training.fit(x, splits.train_y, len(splits.label_map.names),
                       optimizer=options.optimizer,
                       training=options.training, val_x=val_x,
                       val_y=splits.val_y)
  return options, splits, x, val_x, first


def _accuracy(params, x, y):
  scores = x.to_dense() @ np.asarray(params.W, np.float64) + params.b
  return float(np.mean(scores.argmax(1) == y))


@pytest.mark.parametrize('patience', [0, 1])
def test_saved_model_is_refit_on_train_and_validation(corpus, tmp_path,
                                                      patience):
  config = _config(corpus, patience=patience)
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  options, splits, x, val_x, first = _by_hand(config)
  # Validation: the first fit's accuracy on documents it never saw.
  assert results['val_accuracy'] == pytest.approx(
      _accuracy(first.params, val_x, splits.val_y), abs=1e-12)
  assert results['epochs_run'] == first.epochs_run
  # The saved model: the same options on train + validation, for the
  # passes validation chose (the best epoch under early stopping), the
  # first fit's slot budget, no early stopping.
  passes = first.best_epoch if patience else first.epochs_run
  second = training.fit(
      csr.concatenate([x, val_x]),
      np.concatenate([splits.train_y, splits.val_y]),
      len(splits.label_map.names), optimizer=options.optimizer,
      training=dataclasses.replace(
          options.training, epochs=passes, patience=0, max_steps=0,
          docs_per_step=0, token_budget=first.token_budget))
  saved = saved_model.load(tmp_path / 'run' / 'model')
  np.testing.assert_array_equal(saved.params.W, second.params.W)
  np.testing.assert_array_equal(saved.params.b, second.params.b)
  assert not np.array_equal(saved.params.W, first.params.W)
  assert results['refit']['epochs'] == passes
  assert results['refit']['num_docs'] == x.num_docs + val_x.num_docs
  # Test metrics are the saved model's.
  test_x = saved.featurizer.transform(
      [t for t in open(corpus[1], encoding='utf-8').read().splitlines()[1:]
       for t in [t.split('\t', 1)[1]]])
  assert results['test_accuracy'] == pytest.approx(
      _accuracy(saved.params, test_x, splits.test_y), abs=1e-12)


def test_refit_off_saves_the_first_fit(corpus, tmp_path):
  config = _config(corpus)
  config.data.refit = False
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  _, _, _, _, first = _by_hand(config)
  saved = saved_model.load(tmp_path / 'run' / 'model')
  np.testing.assert_array_equal(saved.params.W, first.params.W)
  assert results['refit'] is None
  assert 'refit' not in [p['phase'] for p in results['timeline']]


def test_no_validation_split_no_refit(corpus, tmp_path):
  config = _config(corpus)
  config.data.val_fraction = 0.0
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  assert results['refit'] is None and results['val_accuracy'] is None


def test_train_metrics_on_a_uniform_sample_of_a_large_split(
    corpus, tmp_path, monkeypatch):
  from linjax.cli import finish_run  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(finish_run, 'TRAIN_EVAL_DOCS', 50)
  config = _config(corpus)
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  assert results['train_eval_docs'] == 50
  # The documented draw: 50 of the training split, uniformly, seed
  # train.seed, scored with the saved model.
  options, splits, x, _, _ = _by_hand(config)
  rows = np.sort(np.random.default_rng(options.training.seed).choice(
      x.num_docs, 50, replace=False))
  saved = saved_model.load(tmp_path / 'run' / 'model')
  sample, y = x.take(rows), splits.train_y[rows]
  assert results['train_accuracy'] == pytest.approx(
      _accuracy(saved.params, sample, y), abs=1e-12)
  scores = sample.to_dense() @ np.asarray(saved.params.W, np.float64) + (
      saved.params.b)
  scores -= scores.max(1, keepdims=True)
  nll = np.log(np.exp(scores).sum(1)) - scores[np.arange(50), y]
  assert results['train_loss'] == pytest.approx(nll.mean(), rel=1e-5)


def test_split_views_are_the_parts_without_copies():
  from linjax.cli import refit  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  parts = []
  for n in (7, 4):
    rows = []
    for _ in range(n):
      ids = np.unique(rng.integers(0, 50, rng.integers(0, 6)))
      rows.append((ids, rng.random(ids.shape[0])))
    parts.append(csr.from_rows(rows, 50))
  joined, _ = refit.joined(parts[0], np.zeros(7), parts[1], np.zeros(4))
  head, tail = refit.split_views(joined, 7)
  for got, want in zip((head, tail), parts):
    np.testing.assert_array_equal(got.to_dense(), want.to_dense())
    got.validate('view')
  assert np.shares_memory(head.ids, joined.ids)
  assert np.shares_memory(tail.weights, joined.weights)
