"""Data parallel training: 2 and 8 devices, 2 processes train the 1-device model.

`train.batch_size` and `train.token_budget` describe one global step, so the
same options give the same steps (the same documents in each) whatever the
number of devices, and the sparse step sums their gradients in the 1-device
order: plain SGD gives the 1-device W bit for bit. Adam's update may round
differently: W within 1e-4 relative (the dense path, computed in the 1-device
order, is bit for bit: tests/test_dense_split.py). The
multi-device runs are subprocesses (tests/distributed_worker.py): the device
count is fixed when JAX starts, and jax.distributed needs a process per host.
The 1-device reference is trained here.
"""

import os
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import numpy as np

from linjax.engine import distributed

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, 'distributed_worker.py')
sys.path.insert(0, HERE)
import distributed_worker  # pylint: disable=g-import-not-at-top
from localhost import child_env  # pylint: disable=g-import-not-at-top
from localhost import free_port  # pylint: disable=g-import-not-at-top
from localhost import run_together  # pylint: disable=g-import-not-at-top

W_RTOL = 1e-4      # relative to max |W|: float summation order only
ACC_TOL = 0.002


def _one_device(name):
  """W, b, validation accuracy of the plain 1-device run (no mesh)."""
  x, y = distributed_worker.data()
  mesh = (None if jax.device_count() == 1 else
          distributed.make_mesh(jax.devices()[:1]))
  return distributed_worker._fit(x, y, name, x, y, mesh)  # pylint: disable=protected-access


class SameModelTest(absltest.TestCase):

  def assert_same_model(self, W, b, acc, want, what, exact=False):
    want_W, want_b, want_acc = want
    if exact:
      np.testing.assert_array_equal(W, want_W, what)
      np.testing.assert_array_equal(b, want_b, what)
    scale = np.abs(want_W).max()
    self.assertGreater(scale, 0.1, what)   # it learned something
    np.testing.assert_array_less(np.abs(W - want_W).max(), W_RTOL * scale,
                                 what)
    np.testing.assert_array_less(np.abs(b - want_b).max(),
                                 W_RTOL * max(np.abs(want_b).max(), 1), what)
    self.assertLessEqual(abs(float(acc) - want_acc), ACC_TOL, what)

  def test_eight_and_two_devices_train_the_one_device_model(self):
    out = os.path.join(tempfile.mkdtemp(), 'devices.npz')
    subprocess.run(
        [sys.executable, WORKER, 'devices', out], check=True, timeout=300,
        env=child_env(8))
    with np.load(out) as z:
      for name in distributed_worker.CONFIGS:
        want = _one_device(name)
        for count in (8, 2):
          key = f'{name}{count}'
          self.assert_same_model(z[key + '_W'], z[key + '_b'],
                                 z[key + '_acc'], want, key,
                                 exact=name == 'sgd')

  def test_two_processes_of_unequal_shards_train_the_one_device_model(self):
    d = tempfile.mkdtemp()
    port = free_port()
    run_together([[sys.executable, WORKER, 'process', str(i), '2', str(port),
                   os.path.join(d, f'p{i}.npz')] for i in range(2)],
                 child_env(2))
    want = dict(all=_one_device('adam'), one=_one_device('sgd'))
    for i in range(2):
      with np.load(os.path.join(d, f'p{i}.npz')) as z:
        self.assertEqual((int(z['processes']), int(z['devices'])), (2, 4))
        for run in ('all', 'one'):
          self.assert_same_model(z[run + '_W'], z[run + '_b'],
                                 z[run + '_acc'], want[run], f'p{i} {run}',
                                 exact=run == 'one')


if __name__ == '__main__':
  absltest.main()
