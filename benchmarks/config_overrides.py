"""``section.key=value`` overrides of the default experiment config.

The measuring tools change a few keys of experiments/configs/default.py:
``--override=train.epochs=4,optimizer.learning_rate=24`` (train_speed,
step_microbench) or one variant of compare_configs' ``--variants``. Each
value is parsed as the type of the default it replaces; the overridden config
becomes the library's options through the runners' one adapter
(`experiments.config_check.validate`, a `RunOptions` of `FeaturizerOptions`,
`OptimizerOptions` and `TrainOptions`). A bad item raises
`config_check.ConfigError` naming the flag and the item.
"""

from __future__ import annotations

from typing import Sequence

from linjax.cli import config_check


def parse_value(text: str, like, flag: str):
  """``text`` parsed as the type of the default value ``like``.

  Args:
    text: the value as typed, e.g. ``'24'`` or ``'false'``.
    like: the default it replaces (bool, int, float or str).
    flag: named in the error, e.g. ``'--override train.epochs'``.

  Raises:
    config_check.ConfigError: ``text`` is not of that type.
  """
  if isinstance(like, bool):
    if text.lower() not in ('true', 'false', '1', '0'):
      raise config_check.ConfigError(f'{flag}: expected true or false, got '
                                     f'{text!r}')
    return text.lower() in ('true', '1')
  try:
    return type(like)(text)
  except ValueError:
    raise config_check.ConfigError(
        f'{flag}: expected {type(like).__name__}, got {text!r}') from None


def apply_overrides(base, items: Sequence[str],
                    flag: str) -> config_check.RunOptions:
  """The options of ``base`` with every ``section.key=value`` applied.

  Args:
    base: an `ml_collections.ConfigDict` with the sections of
      experiments/configs/default.py (left unchanged).
    items: ``'section.key=value'`` strings, applied in order.
    flag: the flag they came from, e.g. ``'--override'``, named in errors.

  Returns:
    `config_check.RunOptions` (features, optimizer, training) of the
    overridden config.

  Raises:
    config_check.ConfigError: an item is malformed, names no key of the
      config, has a value of the wrong type, or makes the config invalid.
  """
  config = base.copy_and_resolve_references()
  for item in items:
    key, eq, text = item.partition('=')
    section, _, name = key.strip().partition('.')
    if not eq or section not in config or name not in config[section]:
      raise config_check.ConfigError(
          f'{flag}: {item!r} is not section.key=value with a key of '
          'experiments/configs/default.py')
    config[section][name] = parse_value(text.strip(), config[section][name],
                                        f'{flag} {key.strip()}')
  return config_check.validate(config, prefix=f'{flag} ')
