"""JAX's persistent compilation cache: where it lives and turning it on.

A run's training program takes about a second to compile on 2 CPU cores
(the largest part of a cold fit on a small corpus). JAX can keep compiled
executables on disk; a later process with the same shapes, options and JAX
version then loads the program instead of compiling it.

* Where: ``'auto'`` resolves to ``$LINJAX_COMPILE_CACHE`` if that names a
  folder, else the user's cache folder by the XDG convention,
  ``$XDG_CACHE_HOME/linjax/jax`` or ``~/.cache/linjax/jax`` (as pip and
  other JAX tools keep theirs). ``LINJAX_COMPILE_CACHE=0`` (or ``off``,
  ``false``, ``no``, empty) turns 'auto' off.
* Who: the runners (``train.compile_cache``, default 'auto') turn it on; a
  library caller (`fit`, ``LinjaxClassifier``) opts in with `enable`:
  importing linjax never writes to the user's home.
* Failure is never fatal: a folder that cannot be created or written
  (read-only home, a file in the way) logs one warning and the run compiles
  as usual.

The folder must be trusted (loading an entry runs its code) and may be
deleted at any time; JAX does not bound its size.
"""

from __future__ import annotations

import logging
import os
import tempfile

ENV = 'LINJAX_COMPILE_CACHE'
_OFF = ('', '0', 'off', 'false', 'no', 'none')
_WARNED: set = set()
# The training program takes 0.5-2 s to compile on 2 cores; JAX's tiny
# helper programs (~10 ms) would fill a default-on cache with thousands of
# entries (1,256 in half an hour of runs here) that load no faster.
MIN_COMPILE_SECONDS = 0.1


def default_dir(environ=None) -> str:
  """``$XDG_CACHE_HOME/linjax/jax``, or ``~/.cache/linjax/jax``."""
  environ = os.environ if environ is None else environ
  base = environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'linjax', 'jax')


def resolve(setting: str, environ=None) -> str | None:
  """The cache folder a setting means, or None (off).

  Args:
    setting: ``''`` (off), ``'auto'`` (``$LINJAX_COMPILE_CACHE``, else
      `default_dir`; off if that variable is 0/off/false/no/empty) or a
      folder path (``~`` expanded).
    environ: the environment (default ``os.environ``).

  Returns:
    An absolute folder path, or None.
  """
  environ = os.environ if environ is None else environ
  setting = (setting or '').strip()
  if not setting:
    return None
  if setting == 'auto':
    if ENV in environ:
      value = environ[ENV].strip()
      if value.lower() in _OFF:
        return None
      setting = value
    else:
      setting = default_dir(environ)
  return os.path.abspath(os.path.expanduser(setting))


def _writable(path: str) -> str | None:
  """None if ``path`` is (made) a writable folder, else why not."""
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix='.probe-'):
      pass
  except OSError as e:
    return e.strerror or type(e).__name__
  return None


def enable(setting: str = 'auto',
           min_compile_seconds: float = MIN_COMPILE_SECONDS) -> str | None:
  """Turns JAX's persistent compilation cache on; the folder, or None.

  Call it before the first compilation if possible; enabling later still
  takes effect.

  Args:
    setting: as for `resolve` (``'auto'``: the user's cache folder).
    min_compile_seconds: only programs that took at least this long to
      compile are written (0: all).

  Returns:
    The folder in use, or None: turned off, or the folder cannot be created
    or written (one warning per folder; the run compiles as usual).
  """
  path = resolve(setting)
  if path is None:
    return None
  problem = _writable(path)
  if problem is not None:
    if path not in _WARNED:
      _WARNED.add(path)
      logging.warning('Compile cache %s is not usable (%s); compiling '
                      'without it. Set %s=0 or train.compile_cache=\'\' to '
                      'silence this.', path, problem, ENV)
    return None
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache as cc  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    float(min_compile_seconds))
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  # JAX decides once per process whether the cache is in use (at the first
  # compilation); start over so that enabling it late still takes effect.
  _quiet_reset(cc)
  logging.info('Compile cache: %s', path)
  return path


def _quiet_reset(cc) -> None:
  """``cc.reset_cache()`` without JAX's info line ("Resetting cache at
  <empty>."), which a runner's console would show on every run."""
  jax_log = logging.getLogger('jax._src.compilation_cache')
  level = jax_log.level
  jax_log.setLevel(max(level, logging.WARNING))
  try:
    cc.reset_cache()
  finally:
    jax_log.setLevel(level)


def disable() -> None:
  """Turns the persistent cache off for later compilations."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache as cc  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', None)
  _quiet_reset(cc)
