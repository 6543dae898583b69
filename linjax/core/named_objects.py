"""``MODULE:NAME`` references to a user's own objects (a loss, an optimiser).

The tables of losses (linjax/core/losses.py) and optimisers
(linjax/engine/optimizers.py) take, besides their own names, a reference
``MODULE:NAME``: the attribute NAME (dots allowed: ``Class.attr``) of the
module MODULE, imported as Python imports it (``pkg.mod:fn``). The current
folder is searched too, after ``sys.path`` (as ``python -m`` does, and so
that ``linjax train --config.train.loss=mymod:myloss`` run from the folder
of ``mymod.py`` finds it). Every failure is a `NameNotFound` of one line
naming the reference and what is wrong.
"""

from __future__ import annotations

import importlib
import os
import sys


class NameNotFound(ValueError):
  """A name or ``MODULE:NAME`` reference cannot be resolved (one line)."""


def is_reference(name) -> bool:
  """Whether ``name`` is a str of the form ``MODULE:NAME``."""
  return (isinstance(name, str) and name.count(':') == 1 and
          all(part.strip() for part in name.split(':')))


def _import(module: str, ref: str):
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    missing = e.name or module
    top = module.split('.')[0]
    here = os.getcwd()
    if missing == top and here not in sys.path and os.path.exists(
        os.path.join(here, top + '.py') if '.' not in module else
        os.path.join(here, top)):
      sys.path.append(here)   # the folder the command was run from
      return _import(module, ref)
    raise NameNotFound(f'{ref!r}: cannot import module {module!r} (no module '
                       f'named {missing!r}; run from its folder or add that '
                       f'folder to PYTHONPATH)') from None
  except Exception as e:  # pylint: disable=broad-except
    detail = ' '.join(str(e).split())
    raise NameNotFound(f'{ref!r}: importing module {module!r} failed: '
                       f'{type(e).__name__}: {detail}') from None


def resolve(ref: str):
  """The object a ``MODULE:NAME`` reference names.

  Raises:
    NameNotFound: the module cannot be imported or has no such attribute.
  """
  if not is_reference(ref):
    raise NameNotFound(f'{ref!r} is not a MODULE:NAME reference')
  module, attr = (part.strip() for part in ref.split(':'))
  value = _import(module, ref)
  for part in attr.split('.'):
    try:
      value = getattr(value, part)
    except AttributeError:
      raise NameNotFound(f'{ref!r}: module {module!r} has no attribute '
                         f'{attr!r}') from None
  return value


def reference_of(obj) -> str | None:
  """``MODULE:QUALNAME`` of a function or class if that reference imports
  back to ``obj`` itself (not for lambdas, local functions or ``__main__``);
  else None."""
  module = getattr(obj, '__module__', None)
  qualname = getattr(obj, '__qualname__', None)
  if (not isinstance(module, str) or not isinstance(qualname, str) or
      module == '__main__' or '<' in qualname):
    return None
  value = sys.modules.get(module)
  for part in qualname.split('.'):
    value = getattr(value, part, None)
  return f'{module}:{qualname}' if value is obj else None
