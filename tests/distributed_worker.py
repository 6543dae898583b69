"""Subprocess helper of test_distributed.py (not a test module).

  python distributed_worker.py devices OUT.npz
      (run with XLA_FLAGS=--xla_force_host_platform_device_count=8): trains
      every config of `CONFIGS` on 8 devices and on 2, saves W, b and the
      validation accuracy of each.
  python distributed_worker.py process ID NUM PORT OUT.npz
      (2 local devices each): joins a gloo cluster on 127.0.0.1, reads only
      its block of the corpus (`BOUNDS`: process 0 holds more documents than
      process 1) and trains on all devices of all processes, then on one
      device per process.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# 121 documents: no step count, batch or device count divides it evenly.
NUM_DOCS, SEED = 121, 31
# The 2-process split: process 0 reads documents 0..84, process 1 85..120.
BOUNDS = (0, 85, NUM_DOCS)
CONFIGS = ('sgd', 'adam', 'dense')


def cfg_for(name):
  """batch_size 5: a step's documents never divide evenly over 2, 4 or 8."""
  from test_train import config
  common = dict(train__batch_size=5, train__l2=0.01)
  if name == 'adam':
    return config(optimizer__name='adam', optimizer__learning_rate=0.05,
                  train__update_path='sparse', **common)
  if name == 'dense':
    return config(train__update_path='dense', **common)
  return config(train__update_path='sparse', **common)


def data():
  from test_train import corpus
  return corpus(n=NUM_DOCS, seed=SEED)


def _fit(x, y, name, val_x, val_y, mesh=None):
  from test_train import fit
  r = fit(x, y, cfg_for(name), val_x=val_x, val_y=val_y, mesh=mesh)
  return r.params.W, r.params.b, r.history[-1]['val_accuracy']


def devices(out):
  import jax
  import numpy as np
  from linjax.engine import distributed
  assert jax.device_count() == 8, jax.devices()
  x, y = data()
  arrays = {}
  for name in CONFIGS:
    for count in (8, 2):
      mesh = distributed.make_mesh(jax.devices()[:count])
      W, b, acc = _fit(x, y, name, x, y, mesh)
      arrays.update({f'{name}{count}_W': W, f'{name}{count}_b': b,
                     f'{name}{count}_acc': acc})
  np.savez(out, **arrays)


def process(pid, num, port, out):
  # Joins from the JAX_* variables, as a user launching by hand would.
  os.environ.update(JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
                    JAX_NUM_PROCESSES=str(num), JAX_PROCESS_ID=str(pid))
  from linjax.engine import cluster
  from linjax.engine import distributed
  spec = cluster.join()
  assert spec.source == 'JAX_* variables', spec
  import jax
  import numpy as np
  x, y = data()
  pid = int(pid)
  rows = np.arange(BOUNDS[pid], BOUNDS[pid + 1])
  xs, ys = x.take(rows), y[rows]
  arrays = dict(devices=jax.device_count(), processes=jax.process_count())
  W, b, acc = _fit(xs, ys, 'adam', xs, ys)   # all 4 devices: S = 4
  arrays.update(all_W=W, all_b=b, all_acc=acc)
  one_each = distributed.make_mesh(
      [d for d in jax.devices() if d == jax.local_devices(d.process_index)[0]])
  W, b, acc = _fit(xs, ys, 'sgd', xs, ys, one_each)   # S = 2
  arrays.update(one_W=W, one_b=b, one_acc=acc)
  np.savez(out, **arrays)
  jax.distributed.shutdown()


if __name__ == '__main__':
  if sys.argv[1] == 'devices':
    devices(sys.argv[2])
  else:
    process(*sys.argv[2:])
