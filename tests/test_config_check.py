"""Config validation: every bad value is rejected, naming the flag."""

import os

import pytest

from linjax.cli.configs import default
from linjax.cli import config_check
from linjax.cli.config_check import ConfigError

BAD = [
    ('optimizer.learning_rate', -1.0, 'must be > 0, got -1'),
    ('optimizer.learning_rate', 0.0, 'must be > 0, got 0'),
    ('optimizer.learning_rate', float('nan'), 'finite'),
    ('train.batch_size', 0, 'must be >= 1, got 0'),
    ('train.batch_size', -4, 'must be >= 1, got -4'),
    ('train.token_budget', 0, 'must be >= 1'),
    ('train.epochs', 0, 'must be >= 1, got 0'),
    ('train.l2', -0.1, 'must be >= 0'),
    ('train.patience', -1, 'must be >= 0'),
    ('optimizer.name', 'adamw2', "unknown optimizer 'adamw2'; known: sgd, adagrad, adam"),
    ('optimizer.schedule', 'sawtooth', 'must be one of'),
    ('features.weighting', 'bm25', 'must be one of'),
    ('features.tokenizer', 'bpe', 'must be one of'),
    ('features.normalize', 'l1', 'must be one of'),
    ('data.format', 'xml', 'must be one of'),
    ('train.update_path', 'lazy', 'must be one of'),
    ('train.metric', 'auc', 'must be one of'),
    ('data.val_fraction', 1.0, 'fraction in [0, 1), got 1.0'),
    ('data.val_fraction', -0.1, 'fraction in [0, 1)'),
    ('data.test_fraction', 1.5, 'fraction in [0, 1)'),
    ('optimizer.momentum', 1.0, 'fraction in [0, 1)'),
    ('features.ngrams', 0, 'must be >= 1, got 0'),
    ('features.buckets', -1, 'must be >= 0, got -1'),
    ('features.min_count', 0, 'must be >= 1'),
    ('features.min_df', 0, 'must be >= 1'),
    ('features.max_vocab', -5, 'must be >= 0'),
    ('data.max_per_class', -1, 'must be >= 0'),
    ('optimizer.clip_norm', -1.0, 'must be >= 0'),
    ('optimizer.decay_rate', 1.5, 'must be <= 1'),
    ('optimizer.decay_rate', 0.0, 'must be > 0'),
    ('train.checkpoint_every', -1, 'must be >= 0'),
    ('train.checkpoint_seconds', -5.0, 'must be >= 0'),
    ('train.checkpoint_seconds', float('nan'), 'must be a finite number'),
    ('train.steps_per_call', 0, 'must be >= 1, got 0'),
    ('train.steps_per_call', 2.5, 'integer'),
    ('data.train', '/nonexistent/train.tsv', 'existing file'),
    ('data.test', '/nonexistent/test.tsv', 'existing file'),
]


def _set(config, key, value):
  section, name = key.split('.')
  with config.ignore_type():
    config[section][name] = value


def test_default_config_is_valid():
  config_check.validate(default.get_config())


@pytest.mark.parametrize('key,value,message', BAD)
def test_bad_value_names_flag(key, value, message):
  config = default.get_config()
  _set(config, key, value)
  with pytest.raises(ConfigError) as info:
    config_check.validate(config)
  text = str(info.value)
  assert text.startswith(f'--config.{key} ')
  assert message in text
  assert '\n' not in text
  assert info.value.problems == [text]


def test_exact_message_and_library_prefix():
  config = default.get_config()
  config.optimizer.learning_rate = -1.0
  with pytest.raises(ConfigError, match=r'^--config\.optimizer\.learning_rate '
                     r'must be > 0, got -1\.0$'):
    config_check.validate(config)
  with pytest.raises(ConfigError, match=r'^optimizer\.learning_rate '):
    config_check.validate(config, prefix='')


def test_several_problems_reported_together():
  config = default.get_config()
  config.train.epochs = 0
  config.features.ngrams = 0
  with pytest.raises(ConfigError) as info:
    config_check.validate(config)
  assert len(info.value.problems) == 2
  assert 'and 1 more problem' in str(info.value)
  assert '--config.features.ngrams' in str(info.value)


def test_fractions_must_leave_training_data(tmp_path):
  config = default.get_config()
  config.data.val_fraction = 0.5
  config.data.test_fraction = 0.5
  with pytest.raises(ConfigError, match='val_fraction'):
    config_check.validate(config)
  # With an explicit test file the test fraction is unused.
  test_file = tmp_path / 'test.tsv'
  test_file.write_text('label\ttext\n')
  config.data.test = str(test_file)
  config_check.validate(config)


def test_integer_and_type_checks():
  config = default.get_config()
  _set(config, 'train.epochs', 2.5)
  with pytest.raises(ConfigError, match='train.epochs must be an integer'):
    config_check.validate(config)
  config = default.get_config()
  _set(config, 'optimizer.learning_rate', 'fast')
  with pytest.raises(ConfigError, match='finite number'):
    config_check.validate(config)


def test_cross_field_checks():
  config = default.get_config()
  config.optimizer.name = 'adam'
  config.optimizer.momentum = 0.9
  with pytest.raises(ConfigError, match=r"^--config\.optimizer\.momentum "
                     r"must be 0 with optimizer\.name='adam'"):
    config_check.validate(config)
  # The engine's own check: lr * 2 * l2 >= 1 would flip the sign of W.
  config = default.get_config()
  config.train.l2 = 0.5
  with pytest.raises(ConfigError, match=r'^--config\.train\.l2 '):
    config_check.validate(config)


def test_compile_cache_must_be_a_folder(tmp_path):
  config = default.get_config()
  config.train.compile_cache = str(tmp_path / 'cache')   # created on use
  config_check.validate(config)
  a_file = tmp_path / 'file'
  a_file.write_text('x')
  config.train.compile_cache = str(a_file)
  with pytest.raises(ConfigError, match='train.compile_cache must be a folder'):
    config_check.validate(config)


def test_one_error_class():
  from linjax.core import errors
  from linjax.engine import options
  assert ConfigError is errors.ConfigError is options.ConfigError
  assert ConfigError in config_check.user_error_types()
  assert config_check.one_line(ValueError('a\n  b')) == 'a b'


def test_runner_main_checks_argv_and_required_flags(capsys):
  from absl import app
  with pytest.raises(app.UsageError, match='unexpected arguments: x'):
    with config_check.runner_main(['prog', 'x']):
      pass
  with pytest.raises(SystemExit) as e:
    with config_check.runner_main(['prog'], model='', data=''):
      pass
  assert str(e.value) == 'error: --model and --data are required'
  ran = []
  with config_check.runner_main(['prog'], workdir='/tmp/w'):
    ran.append(True)
  assert ran == [True]


def test_options_are_the_config_and_the_config_the_options():
  """The adapter is exact: a config's options hold its values, and the
  default config is the options' defaults."""
  import dataclasses
  from linjax.engine.options import OptimizerOptions, TrainOptions
  from linjax.text.featurizer_options import FeaturizerOptions
  config = default.get_config()
  options = config_check.to_options(config)
  assert options == (FeaturizerOptions(), OptimizerOptions(), TrainOptions())
  config.optimizer.learning_rate = 3.5
  config.features.ngrams = 3
  config.train.epochs = 7
  options = config_check.to_options(config)
  assert options.optimizer.learning_rate == 3.5
  assert options.features.ngrams == 3 and options.training.epochs == 7
  for section, opts in (('features', options.features),
                        ('optimizer', options.optimizer),
                        ('train', options.training)):
    for key, value in dataclasses.asdict(opts).items():
      assert config[section][key] == value, (section, key)


def test_unknown_option_in_a_section_is_named():
  import ml_collections
  config = default.get_config().to_dict()
  config['optimizer']['lerning_rate'] = 1.0
  with pytest.raises(ConfigError, match=r'^--config\.optimizer\.lerning_rate '
                     r'is not an option; known: .*learning_rate'):
    config_check.validate(ml_collections.ConfigDict(config))


def test_config_names_a_built_in_config(tmp_path, monkeypatch):
  """Issue 23: --config=multilabel names linjax/cli/configs/multilabel.py; a
  file of that name wins; a missing file is one line naming the built-ins."""
  from linjax.cli import runner_flags
  assert runner_flags.builtin_configs() == ['default', 'multilabel']
  path = os.path.join(runner_flags.CONFIG_DIR, 'multilabel.py')
  assert runner_flags.resolve_config_name(
      ['x', '--config=multilabel', '--config.train.epochs=2']) == [
          'x', f'--config={path}', '--config.train.epochs=2']
  assert runner_flags.resolve_config_name(['x', '--config', 'multilabel']) == [
      'x', '--config', path]
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'multilabel').write_text('')      # a file of that name wins
  assert runner_flags.resolve_config_name(['x', '--config=multilabel']) == [
      'x', '--config=multilabel']
  with pytest.raises(SystemExit) as e:
    runner_flags.resolve_config_name(['x', '--config=nope.py'])
  assert str(e.value.code) == ('error: --config=nope.py: no such file; give a '
                               'python file with get_config(), or a built-in '
                               'config: default, multilabel')
