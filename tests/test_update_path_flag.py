"""``train.update_path`` (once ``train.update``, which clashed with
``ConfigDict.update`` and could not be set from the command line)."""

import sys

from absl import flags
from ml_collections import config_flags
import pytest

from linjax.cli import runner_flags as cli
from linjax.cli import config_check
from linjax.cli.configs import default
from linjax.core.errors import ConfigError
from linjax.engine.options import TrainOptions


def _parse(*overrides):
  """The config of ``train --config=<default> OVERRIDES``, parsed as absl
  does (ml_collections defines the override flags from sys.argv)."""
  argv = ['train', f'--config={cli.DEFAULT_CONFIG}', *overrides]
  values = flags.FlagValues()
  saved, sys.argv = sys.argv, argv
  try:
    config_flags.DEFINE_config_file('config', cli.DEFAULT_CONFIG,
                                    flag_values=values, lock_config=True)
    values(argv)
  finally:
    sys.argv = saved
  return values.config


@pytest.mark.parametrize('value', ['sparse', 'dense', 'auto'])
def test_update_path_is_set_from_the_command_line(value):
  config = _parse(f'--config.train.update_path={value}')
  assert config.train.update_path == value
  assert config_check.validate(config).training.update_path == value


def test_a_bad_update_path_names_the_flag():
  with pytest.raises(ConfigError, match=r"--config\.train\.update_path must "
                     r"be one of 'auto', 'sparse', 'dense'"):
    config_check.validate(_parse('--config.train.update_path=lazy'))


def test_the_old_key_in_a_config_file_names_the_new_one():
  config = default.get_config()
  config.train.update = 'sparse'   # an old config file's line
  with pytest.raises(ConfigError) as error:
    config_check.validate(config)
  assert str(error.value) == (
      '--config.train.update was renamed: use --config.train.update_path '
      "(same values), got 'sparse'")
  with pytest.raises(ConfigError, match='train.update_path'):
    config_check.to_options({'train': {'update': 'dense'}})


def test_the_old_flag_names_the_new_one(monkeypatch, capsys):
  monkeypatch.setattr(sys, 'argv', ['train', '--config.train.update=sparse'])
  with pytest.raises(SystemExit) as exit_:
    cli.parse_flags(sys.argv)
  assert exit_.value.code == (
      'error: --config.train.update was renamed: use '
      '--config.train.update_path (same values)')
  assert not capsys.readouterr().out


def test_the_default_is_the_options_default():
  assert default.get_config().train.update_path == TrainOptions().update_path
  assert 'update' not in default.get_config().train.to_dict()
