"""host_memory.trim returns freed heap pages to the OS (glibc only)."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from linjax.engine import host_memory


def _resident_mb() -> float:
  with open('/proc/self/statm', encoding='ascii') as f:
    return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(platform.system() != 'Linux' or
                    platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_trim_gives_back_freed_heap():
  host_memory.trim()
  # 2,000 blocks of 100 KB: under glibc's mmap threshold, so on the heap.
  blocks = [np.ones(12_800) for _ in range(2_000)]
  keep = blocks[-1]  # the heap top stays in use: only a trim frees the rest
  held = _resident_mb()
  del blocks
  assert _resident_mb() > held - 50  # freed, but still resident
  assert host_memory.trim()
  assert _resident_mb() < held - 100
  assert keep.sum() == 12_800
