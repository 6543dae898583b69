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


def _pool(config):
  """The library path on the training file (the benchmark's linjax row):
  the featuriser fitted on every training document in file order, and
  `training.fit` with the run's options; and the run's splits."""
  options = config_check.validate(config)
  splits = run_data.load_splits(config)
  corpus_rows = [line.split('\t', 1) for line in
                 open(config.data.train, encoding='utf-8').read()
                 .splitlines()[1:]]
  featurizer = Featurizer.from_options(options.features)
  x = featurizer.fit_transform([t for _, t in corpus_rows])
  y = splits.label_map.encode([label for label, _ in corpus_rows])
  library = training.fit(x, y, len(splits.label_map.names),
                         optimizer=options.optimizer,
                         training=options.training)
  return options, splits, featurizer, x, y, library


def _by_hand(config):
  """The first fit by the library: the training split's rows of the
  pool's features, validation watched, at the slot budget of the whole
  pool's fit (T given, docs_per_step off)."""
  options, splits, featurizer, x, y, library = _pool(config)
  position = {t: i for i, t in enumerate(
      line.split('\t', 1)[1] for line in open(
          config.data.train, encoding='utf-8').read().splitlines()[1:])}
  train_rows = np.array([position[t] for t in splits.train_texts])
  val_rows = np.array([position[t] for t in splits.val_texts])
  first = training.fit(
      x.take(train_rows), splits.train_y, len(splits.label_map.names),
      optimizer=options.optimizer,
      training=dataclasses.replace(options.training, docs_per_step=0,
                                   token_budget=library.token_budget),
      val_x=x.take(val_rows), val_y=splits.val_y)
  return (options, splits, x.take(train_rows), x.take(val_rows), first,
          library, x, y)


def _accuracy(params, x, y):
  scores = x.to_dense() @ np.asarray(params.W, np.float64) + params.b
  return float(np.mean(scores.argmax(1) == y))


def test_saved_model_is_the_library_fit_on_the_training_file(corpus,
                                                             tmp_path):
  config = _config(corpus)
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  _, splits, _, val_x, first, library, _, _ = _by_hand(config)
  saved = saved_model.load(tmp_path / 'run' / 'model')
  # Without early stopping the refit IS the library's fit, bit for bit.
  np.testing.assert_array_equal(saved.params.W, library.params.W)
  np.testing.assert_array_equal(saved.params.b, library.params.b)
  assert not np.array_equal(saved.params.W, first.params.W)
  # Validation: the first fit's accuracy on documents it never saw.
  assert results['val_accuracy'] == pytest.approx(
      _accuracy(first.params, val_x, splits.val_y), abs=1e-12)
  assert results['epochs_run'] == first.epochs_run
  assert results['refit']['epochs'] == library.epochs_run
  assert results['refit']['num_docs'] == 200
  # One compiled program for both fits: the refit waited for no compile.
  assert results['refit']['compile_seconds'] == 0.0
  # Test metrics are the saved model's.
  test_x = saved.featurizer.transform(
      [line.split('\t', 1)[1] for line in open(
          corpus[1], encoding='utf-8').read().splitlines()[1:]])
  assert results['test_accuracy'] == pytest.approx(
      _accuracy(saved.params, test_x, splits.test_y), abs=1e-12)


def test_early_stopping_refits_for_the_best_epoch(corpus, tmp_path):
  config = _config(corpus, patience=1, epochs=4)
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  options, _, _, _, first, library, x, y = _by_hand(config)
  # The passes validation chose, at the first fit's slot budget.
  second = training.fit(
      x, y, library.params.b.shape[0], optimizer=options.optimizer,
      training=dataclasses.replace(
          options.training, epochs=first.best_epoch, patience=0,
          max_steps=0, docs_per_step=0, token_budget=first.token_budget))
  saved = saved_model.load(tmp_path / 'run' / 'model')
  np.testing.assert_array_equal(saved.params.W, second.params.W)
  assert results['refit']['epochs'] == first.best_epoch
  assert results['best_epoch'] == first.best_epoch


def test_refit_off_saves_the_first_fit(corpus, tmp_path):
  config = _config(corpus)
  config.data.refit = False
  results = train_runner.train_and_evaluate(config, str(tmp_path / 'run'))
  options = config_check.validate(config)
  splits = run_data.load_splits(config)
  featurizer = Featurizer.from_options(options.features)
  only = training.fit(featurizer.fit_transform(splits.train_texts),
                      splits.train_y, len(splits.label_map.names),
                      optimizer=options.optimizer, training=options.training)
  saved = saved_model.load(tmp_path / 'run' / 'model')
  np.testing.assert_array_equal(saved.params.W, only.params.W)
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
  options, splits, x, _, _, _, _, _ = _by_hand(config)
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
