"""The split step's one packed all-gather (linjax/engine/one_device_step.py).

The scale tests (test_distributed, test_dense_split, test_scale_split)
check the trained models; this checks the packing itself, bit for bit, on
the values a model would hide: -0.0, NaN payloads, infinities, subnormals,
negative ids and uint8 multi-hot labels. `jax.vmap` with an axis name
stands in for the devices (the same `all_gather` over the 'batch' axis).
"""

import types

import jax
import jax.numpy as jnp
import numpy as np

from linjax.engine import distributed
from linjax.engine import one_device_step


def _arrays(num_devices, rng):
  special = np.array([-0.0, np.inf, -np.inf, 1e-45, 3.4e38, 1.5],
                     np.float32)
  nan_payload = np.array([0x7FC00123, 0xFFC00001], np.uint32).view(
      np.float32)
  g = rng.standard_normal((num_devices, 2, 4, 3)).astype(np.float32)
  g.reshape(-1)[:special.size] = special
  g.reshape(-1)[special.size:special.size + 2] = nan_payload
  return dict(
      slot_pos=rng.integers(-5, 2**31 - 1, (num_devices, 2, 4)).astype(
          np.int32),
      g_tok=g,
      labels=rng.integers(0, 2, (num_devices, 2, 5, 3)).astype(np.uint8),
      mask=rng.uniform(0, 2, (num_devices, 2, 5)).astype(np.float32))


def _assert_gathered_exactly(arrays, num_devices):
  """`_gather_all` over ``num_devices`` vmapped devices: every device holds
  all devices' sub-batches, in device order, byte for byte."""
  spec = types.SimpleNamespace(distributed=True)
  got = jax.vmap(lambda a: one_device_step._gather_all(spec, a),
                 axis_name=distributed.AXIS)(
                     {k: jnp.asarray(v) for k, v in arrays.items()})
  for name, value in arrays.items():
    want = value.reshape((-1,) + value.shape[2:])
    for device in range(num_devices):
      have = np.asarray(got[name][device])
      assert have.dtype == value.dtype and have.shape == want.shape, name
      assert have.tobytes() == want.tobytes(), name


def test_one_gather_gives_every_array_bit_for_bit():
  _assert_gathered_exactly(_arrays(3, np.random.default_rng(0)), 3)


def test_one_device_gathers_nothing():
  arrays = _arrays(1, np.random.default_rng(1))
  spec = types.SimpleNamespace(distributed=False)
  got = one_device_step._gather_all(spec, arrays)
  assert all(got[k] is arrays[k] for k in arrays)


def test_eight_byte_values_travel_on_their_own():
  """Under jax_enable_x64 an int64 or float64 array is gathered exactly
  beside the packed ones (int32 words would truncate it)."""
  rng = np.random.default_rng(2)
  arrays = _arrays(2, rng)
  arrays['big'] = rng.integers(2**40, 2**62, (2, 2, 3))
  arrays['wide'] = rng.standard_normal((2, 2, 3))
  with jax.enable_x64(True):
    _assert_gathered_exactly(arrays, 2)
