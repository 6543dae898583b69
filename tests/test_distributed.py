"""Data parallel training: 8 CPU devices and 2 processes match one device.

Both run in subprocesses (tests/distributed_worker.py): the device count is
fixed when JAX starts, and jax.distributed needs a process per host.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

from absl.testing import absltest
import jax
import numpy as np

from linjax.engine import distributed
from test_train import corpus
from test_train import fit

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, 'distributed_worker.py')
sys.path.insert(0, HERE)
import distributed_worker  # pylint: disable=g-import-not-at-top


def _env(**extra):
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join([os.path.dirname(HERE), HERE])
  env.pop('XLA_FLAGS', None)
  env.update(extra)
  return env


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _single_device(name, num_shards):
  """The one-device run over the same global batches."""
  x, y = corpus(n=120, seed=31)
  mesh = distributed.make_mesh(jax.devices()[:1])
  return fit(x, y, distributed_worker.cfg_for(name), mesh=mesh,
                   num_shards=num_shards).params


class DistributedTest(absltest.TestCase):

  def test_eight_devices_match_one(self):
    out = os.path.join(tempfile.mkdtemp(), 'report.json')
    subprocess.run(
        [sys.executable, WORKER, 'devices', out], check=True, timeout=240,
        env=_env(XLA_FLAGS='--xla_force_host_platform_device_count=8'))
    with open(out) as f:
      report = json.load(f)
    for name, r in report.items():
      self.assertLess(r['max_diff'], 1e-5 * max(r['scale'], 1.0), name)
      self.assertLess(r['b_diff'], 1e-5, name)
      self.assertEqual(r['val'][0], r['val'][1], name)
    # And the 8-device model equals the plain (no shard_map) one-device path.
    x, y = corpus(n=120, seed=31)
    plain = fit(x, y, distributed_worker.cfg_for('adam'),
                      num_shards=8).params
    with np.load(out + '.adam.npz') as z:
      np.testing.assert_allclose(z['W'], plain.W, atol=1e-6)

  def test_two_processes_match_one(self):
    d = tempfile.mkdtemp()
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, WORKER, 'process', str(i), '2', str(port),
         os.path.join(d, f'p{i}.npz'), 'adam'],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    try:
      logs = [p.communicate(timeout=180)[0].decode() for p in procs]
    finally:
      for p in procs:
        if p.poll() is None:
          p.kill()
          p.wait()
    for p, log in zip(procs, logs):
      self.assertEqual(p.returncode, 0, log[-3000:])
    want = _single_device('adam', num_shards=2)
    for i in range(2):
      with np.load(os.path.join(d, f'p{i}.npz')) as z:
        self.assertEqual((int(z['processes']), int(z['devices'])), (2, 2))
        np.testing.assert_allclose(z['W'], want.W, atol=1e-6)
        np.testing.assert_allclose(z['b'], want.b, atol=1e-6)


if __name__ == '__main__':
  absltest.main()
