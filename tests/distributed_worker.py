"""Subprocess helper of test_distributed.py (not a test module).

  python distributed_worker.py devices OUT.json
      (run with XLA_FLAGS=--xla_force_host_platform_device_count=8)
  python distributed_worker.py process ID NUM PORT OUT.npz NAME
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cfg_for(name):
  from test_train import config
  if name == 'adam':
    return config(optimizer__name='adam', optimizer__learning_rate=0.05,
                  train__update='sparse', train__l2=0.01)
  if name == 'dense':
    return config(train__update='dense', train__l2=0.01)
  return config(train__update='sparse', train__l2=0.01)


def devices(out):
  import jax
  import numpy as np
  from linjax.engine import distributed
  from test_train import corpus, fit
  assert jax.device_count() == 8, jax.devices()
  x, y = corpus(n=120, seed=31)
  report = {}
  for name in ('sgd', 'adam', 'dense'):
    cfg = cfg_for(name)
    multi = fit(x, y, cfg, val_x=x, val_y=y)   # default: 8 devices
    single = fit(x, y, cfg, val_x=x, val_y=y,
                       mesh=distributed.make_mesh(jax.devices()[:1]),
                       num_shards=8)
    report[name] = dict(
        max_diff=float(np.abs(multi.params.W - single.params.W).max()),
        b_diff=float(np.abs(multi.params.b - single.params.b).max()),
        scale=float(np.abs(single.params.W).max()),
        val=[multi.history[-1]['val_accuracy'],
             single.history[-1]['val_accuracy']])
    np.savez(f'{out}.{name}.npz', W=multi.params.W, b=multi.params.b)
  with open(out, 'w') as f:
    json.dump(report, f)


def process(pid, num, port, out, name):
  from linjax.engine import distributed
  distributed.initialize(f'127.0.0.1:{port}', int(num), int(pid))
  import jax
  import numpy as np
  from test_train import corpus, fit
  x, y = corpus(n=120, seed=31)
  rows = distributed.process_shard(x.num_docs)
  r = fit(x.take(rows), y[rows], cfg_for(name))
  np.savez(out, W=r.params.W, b=r.params.b,
           devices=jax.device_count(), processes=jax.process_count())
  jax.distributed.shutdown()


if __name__ == '__main__':
  if sys.argv[1] == 'devices':
    devices(sys.argv[2])
  else:
    process(*sys.argv[2:])
