"""The order in which an epoch visits the packed steps, drawn on the host.

Deterministic from (seed, epoch): the same order on every backend, device
count and process (each process draws it; nothing is communicated), and
the same after a resume. `run_loop.epochs` feeds the compiled chunk
(linjax/engine/chunk_program.py) in this order.
"""

from __future__ import annotations

import numpy as np


def mix32(h):
  """A 32-bit integer hash (murmur3/splitmix finaliser), uint32 -> uint32."""
  h = (h ^ (h >> 16)) * np.uint32(0x7FEB352D)
  h = (h ^ (h >> 15)) * np.uint32(0x846CA68B)
  return h ^ (h >> 16)


def batch_order(seed, epoch, num_steps: int) -> np.ndarray:
  """int32 [G]: the order in which epoch ``epoch`` visits the packed steps.

  A permutation drawn on the host: step i gets the key hash(seed, epoch, i)
  and the steps are sorted (stably) by key. Deterministic from (seed, epoch);
  the same numbers as the former on-device draw.
  """
  seed = np.asarray([seed]).astype(np.uint32)
  epoch = np.asarray([epoch]).astype(np.uint32)
  base = mix32(mix32(seed + np.uint32(0x9E3779B9)) ^ epoch)
  keys = mix32(mix32(np.arange(num_steps, dtype=np.uint32) ^ base) + base)
  return np.argsort(keys, kind='stable').astype(np.int32)
