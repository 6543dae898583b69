"""Errors a caller can cause by passing bad settings, and their one checker.

Every options dataclass of the library (`linjax.text.FeaturizerOptions`,
`linjax.engine.OptimizerOptions`, `linjax.engine.TrainOptions`) validates its
fields with `Checker` in ``__post_init__`` and raises one `ConfigError` that
lists every problem, each naming its field as ``section.field`` (the key of
the runner's config, so a message maps straight to a ``--config.`` flag).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np


class ConfigError(ValueError):
  """An option value is invalid; the message names the option.

  ``problems`` lists every problem found (the message shows the first in
  full and the others after it).
  """

  def __init__(self, problems: str | Iterable[str]):
    self.problems = [problems] if isinstance(problems, str) else list(problems)
    first, rest = self.problems[0], self.problems[1:]
    more = (f' (and {len(rest)} more problem{"s" if len(rest) > 1 else ""}: '
            + '; '.join(rest) + ')') if rest else ''
    super().__init__(first + more)


def is_int(value) -> bool:
  """A Python or numpy integer that is not a bool."""
  return isinstance(value, numbers.Integral) and not isinstance(
      value, (bool, np.bool_))


def is_number(value) -> bool:
  """A real number (int or float, numpy included) that is not a bool."""
  return isinstance(value, numbers.Real) and not isinstance(
      value, (bool, np.bool_))


def _fmt(value) -> str:
  return repr(value) if isinstance(value, str) else str(value)


class Checker:
  """Collects 'section.field must ..., got VALUE' problems for one object."""

  def __init__(self, obj: Any, section: str):
    self.obj, self.section = obj, section
    self.problems: list[str] = []

  def fail(self, field: str, requirement: str, value=None) -> None:
    got = '' if value is None else f', got {_fmt(value)}'
    self.problems.append(f'{self.section}.{field} {requirement}{got}')

  def boolean(self, field: str) -> None:
    value = getattr(self.obj, field)
    if not isinstance(value, (bool, np.bool_)):
      self.fail(field, 'must be True or False', value)

  def choice(self, field: str, allowed: Iterable[str]) -> None:
    value, allowed = getattr(self.obj, field), tuple(allowed)
    if value not in allowed:
      self.fail(field, 'must be one of ' + ', '.join(map(repr, allowed)),
                value)

  def integer(self, field: str, lo: int | None = None,
              hi: int | None = None) -> None:
    """``lo <= value < hi``."""
    value = getattr(self.obj, field)
    if not is_int(value):
      return self.fail(field, 'must be an integer', value)
    if lo is not None and value < lo:
      return self.fail(field, f'must be >= {lo}', value)
    if hi is not None and value >= hi:
      self.fail(field, f'must be < {hi}', value)

  def number(self, field: str, lo: float | None = None,
             hi: float | None = None, lo_open: bool = False,
             hi_open: bool = False) -> None:
    """A finite number with ``lo (<|<=) value (<|<=) hi``."""
    value = getattr(self.obj, field)
    if not is_number(value) or not math.isfinite(value):
      return self.fail(field, 'must be a finite number', value)
    if lo is not None and (value <= lo if lo_open else value < lo):
      return self.fail(field, f'must be {">" if lo_open else ">="} {lo}',
                       value)
    if hi is not None and (value >= hi if hi_open else value > hi):
      self.fail(field, f'must be {"<" if hi_open else "<="} {hi}', value)

  def fraction(self, field: str) -> None:
    """A number in [0, 1)."""
    value = getattr(self.obj, field)
    if not is_number(value) or not 0 <= value < 1:
      self.fail(field, 'must be a fraction in [0, 1)', value)

  def done(self) -> None:
    """Raises `ConfigError` with every problem collected, if any."""
    if self.problems:
      raise ConfigError(self.problems)
