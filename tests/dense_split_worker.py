"""Subprocess helper of test_dense_split.py (not a test module).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 \
      python dense_split_worker.py OUT.npz

trains every config of `CONFIGS` on the dense update path with 8 and with 2
devices and saves W and b of each (``{name}{count}_W``, ``{name}{count}_b``).

  XLA_FLAGS=--xla_force_host_platform_device_count=2 \
      python dense_split_worker.py OUT.npz ID PORT

is process ID of 2 (gloo on 127.0.0.1:PORT): it holds only its block of the
corpus (`BOUNDS`, unequal) and trains `PROCESS_CONFIG` on all 4 devices.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# 121 documents, 5 a step: no step divides evenly over 2 or 8 devices.
NUM_DOCS, SEED = 121, 7
# name: (optimizer fields, train fields, sample weights?). The learning
# rates are large, as the default's (28): a step's rounding grows over the
# run, so only the 1-device summation gives the 1-device model.
CONFIGS = {
    'sgd': (dict(learning_rate=8.0), dict(), False),
    'sgd_l2_weights': (dict(learning_rate=8.0), dict(l2=0.003), True),
    'momentum_l2_weights': (dict(learning_rate=2.0, momentum=0.9,
                                 clip_norm=1.0), dict(l2=0.003), True),
    'adam_l2_weights': (dict(name='adam', learning_rate=0.3,
                             weight_decay=0.01), dict(l2=0.003), True),
    'adam_sigmoid': (dict(name='adam', learning_rate=0.3),
                     dict(loss='sigmoid'), False),
}
# The 2-process run: process 0 holds documents 0..84, process 1 85..120.
BOUNDS = (0, 85, NUM_DOCS)
PROCESS_CONFIG = 'momentum_l2_weights'


def data():
  """(x, y, sample weights, multi-hot labels) of the test corpus."""
  import numpy as np
  from test_train import corpus
  x, y = corpus(n=NUM_DOCS, seed=SEED)
  rng = np.random.default_rng(SEED)
  weights = rng.uniform(0.2, 3.0, NUM_DOCS).astype(np.float32)
  multi_hot = np.eye(3, dtype=np.uint8)[y]
  multi_hot[::3, (y[::3] + 1) % 3] = 1   # a third of them have two labels
  return x, y, weights, multi_hot


def fit(name, mesh=None, rows=None):
  """(W, b) of config ``name`` trained on the dense path over ``mesh``, on
  documents ``rows`` (default all)."""
  from test_train import config
  from test_train import fit as fit_options
  opt, train, weighted = CONFIGS[name]
  x, y, weights, multi_hot = data()
  if rows is not None:
    x, y = x.take(rows), y[rows]
    weights, multi_hot = weights[rows], multi_hot[rows]
  kw = {f'optimizer__{k}': v for k, v in opt.items()}
  kw.update({f'train__{k}': v for k, v in train.items()})
  cfg = config(train__update_path='dense', train__batch_size=5,
               train__epochs=3, optimizer__schedule='constant', **kw)
  labels = multi_hot if train.get('loss') == 'sigmoid' else y
  r = fit_options(x, labels, cfg, mesh=mesh,
                  sample_weight=weights if weighted else None)
  return r.params.W, r.params.b


def main(out):
  import jax
  import numpy as np
  from linjax.engine import distributed
  assert jax.device_count() == 8, jax.devices()
  arrays = {}
  for name in CONFIGS:
    for count in (8, 2):
      W, b = fit(name, distributed.make_mesh(jax.devices()[:count]))
      arrays.update({f'{name}{count}_W': W, f'{name}{count}_b': b})
  np.savez(out, **arrays)


def process(out, pid, port):
  from linjax.engine import distributed
  distributed.initialize(f'127.0.0.1:{port}', 2, int(pid))
  import jax
  import numpy as np
  assert jax.device_count() == 4, jax.devices()
  pid = int(pid)
  W, b = fit(PROCESS_CONFIG, rows=np.arange(BOUNDS[pid], BOUNDS[pid + 1]))
  np.savez(out, W=W, b=b)
  jax.distributed.shutdown()


if __name__ == '__main__':
  if len(sys.argv) > 2:
    process(*sys.argv[1:])
  else:
    main(sys.argv[1])
