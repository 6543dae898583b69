"""Settings for the whole test session.

The runners' ``train.compile_cache`` defaults to 'auto' (the user's cache
folder, linjax/engine/compile_cache.py); tests must never write there, so
'auto' is off for this process and every runner it starts. Tests of the
cache pass their own folders.
"""

import os

os.environ['LINJAX_COMPILE_CACHE'] = '0'


def pytest_configure(config):
  # Slow tests run in CI too (the README's test command has no -m filter);
  # `-m "not slow"` leaves them out of a quick local run.
  config.addinivalue_line('markers', 'slow: a test that takes minutes '
                          '(e.g. tests/test_install.py)')
