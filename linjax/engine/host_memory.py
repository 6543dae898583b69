"""Host memory: hand the heap's free pages back to the operating system.

numpy only uses malloc; glibc keeps freed blocks for reuse instead of
returning them, so after featurisation (hundreds of MB of temporaries on a
large corpus) a process keeps that memory resident while it trains. `trim`
returns it (glibc's ``malloc_trim``); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
  name = ctypes.util.find_library('c')
  try:
    return ctypes.CDLL(name).malloc_trim if name else None
  except (OSError, AttributeError):  # not glibc
    return None


def trim() -> bool:
  """Returns freed heap memory to the OS; True if the C library could."""
  fn = _malloc_trim()
  return bool(fn(0)) if fn is not None else False
