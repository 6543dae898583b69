"""The text layer's worker threads: map a function over chunks, in order.

numpy only, no JAX. numpy releases the GIL in its array work (ufuncs, sort,
take, cumsum), so featurising chunks of a corpus on several threads uses
several cores. `THREADS` threads (at most 4, at most the cores this process
may use; the environment variable LINJAX_TEXT_THREADS sets another number, 1
for none) start on first use and are shared by the whole process.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Callable, Sequence, TypeVar

Item = TypeVar('Item')
Result = TypeVar('Result')


def _default_threads() -> int:
  """LINJAX_TEXT_THREADS if set (1 turns threads off), else min(4, cores)."""
  cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
           else os.cpu_count() or 1)
  value = os.environ.get('LINJAX_TEXT_THREADS', '')
  if value:
    if not value.isdigit() or int(value) < 1:
      raise ValueError(f'LINJAX_TEXT_THREADS must be a positive integer, got '
                       f'{value!r}')
    return int(value)
  return max(1, min(4, cores))


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
