"""The text layer's worker threads: map a function over chunks, in order.

numpy only, no JAX. numpy releases the GIL in its array work (ufuncs, sort,
take, cumsum), so featurising chunks of a corpus on several threads uses
several cores. `THREADS` threads (4; the environment variable
LINJAX_TEXT_THREADS sets another number, 1 for none) start on first use and
are shared by the whole process.

Why 4 even on 2 cores: another Python thread of the process (the runner
compiles its training program in the background, tracing it in Python) takes
the GIL whenever a numpy call releases it, and the thread that made the call
then waits up to the interpreter's switch interval to get it back; with more
featurising threads, one of them usually takes it instead. Measured on
healthtweets while the runner's precompile ran (2 cores, load 9): featurising
1.53-1.85 s with 2 threads, 1.13-1.45 s with 4, the compile finished no later;
peak memory +48 MB with 2 threads, +58 MB with 4 (a chunk each in flight).
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Callable, Sequence, TypeVar

Item = TypeVar('Item')
Result = TypeVar('Result')


_DEFAULT_THREADS = 4


def _default_threads() -> int:
  """LINJAX_TEXT_THREADS if set (1 turns threads off), else 4."""
  value = os.environ.get('LINJAX_TEXT_THREADS', '')
  if value:
    if not value.isdigit() or int(value) < 1:
      raise ValueError(f'LINJAX_TEXT_THREADS must be a positive integer, got '
                       f'{value!r}')
    return int(value)
  return _DEFAULT_THREADS


THREADS = _default_threads()

_POOL: list[concurrent.futures.ThreadPoolExecutor] = []
_LOCK = threading.Lock()


def map_in_order(fn: Callable[[Item], Result],
                 items: Sequence[Item]) -> list[Result]:
  """``[fn(item) for item in items]``, on `THREADS` threads if there are
  several items (the results do not depend on it)."""
  if len(items) <= 1 or THREADS == 1:
    return [fn(item) for item in items]
  with _LOCK:
    if not _POOL:
      _POOL.append(concurrent.futures.ThreadPoolExecutor(
          THREADS, thread_name_prefix='linjax-text'))
  return list(_POOL[0].map(fn, items))
