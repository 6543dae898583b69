"""Micro-benchmark of the training engine's phases on one corpus.

Usage:
  python -m experiments.step_microbench [--data=/work/shared/data/healthtweets]
      [--repeats=5] [--override key=value ...] [--dump_hlo]

Featurises once (cached as .npz under --cache), then times separately:
packing, tracing + lowering, XLA compilation, and one epoch (best and median
of --repeats, wall and process CPU time), with one JSON line per phase. The
machine is shared and noisy: compare best-of-N numbers from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def load_features(data, cache, config):
  from experiments import train_speed
  from linjax.text import csr
  from linjax.text import featurizer as text
  if cache and os.path.exists(cache):
    z = np.load(cache)
    mk = lambda p: csr.CsrFeatures(z[p + 'indptr'], z[p + 'ids'],
                                   z[p + 'weights'], int(z['F']))
    return mk('tr_'), z['ytr'], mk('te_'), z['yte'], int(z['C'])
  tr = train_speed.read_tsv(os.path.join(data, 'train.tsv'))
  te = train_speed.read_tsv(os.path.join(data, 'test.tsv'))
  names = sorted(set(tr[1]))
  index = {n: i for i, n in enumerate(names)}
  featurizer = text.Featurizer.from_config(config.features)
  xtr = featurizer.fit_transform(tr[0])
  xte = featurizer.transform(te[0])
  ytr = np.array([index[n] for n in tr[1]], np.int32)
  yte = np.array([index[n] for n in te[1]], np.int32)
  if cache:
    np.savez(cache, F=xtr.num_features, C=len(names), ytr=ytr, yte=yte,
             **{p + k: getattr(x, k) for p, x in (('tr_', xtr), ('te_', xte))
                for k in ('indptr', 'ids', 'weights')})
  return xtr, ytr, xte, yte, len(names)


def _timed(fn, repeats):
  walls, cpus, out = [], [], None
  for _ in range(repeats):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    walls.append(time.perf_counter() - w)
    cpus.append(time.process_time() - c)
  return out, dict(best_s=round(min(walls), 4),
                   median_s=round(float(np.median(walls)), 4),
                   best_cpu_s=round(min(cpus), 4))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--data', default='/work/shared/data/healthtweets')
  ap.add_argument('--cache', default='/tmp/linjax_healthtweets.npz',
                  help='featurised corpus (.npz); delete it when the '
                  'features config changes')
  ap.add_argument('--repeats', type=int, default=5)
  ap.add_argument('--override', nargs='*', default=[])
  ap.add_argument('--train_module', default='',
                  help='time this copy of linjax/engine/training.py instead (a path)')
  ap.add_argument('--dump_hlo', default='',
                  help='write the optimised HLO of the epoch to this file')
  a = ap.parse_args()

  import jax
  from experiments import train_speed
  from experiments.configs import default
  from linjax.engine import training as train
  if a.train_module:
    import importlib.util
    spec_ = importlib.util.spec_from_file_location('linjax._alt_train',
                                                   a.train_module)
    train = importlib.util.module_from_spec(spec_)
    sys.modules[spec_.name] = train
    spec_.loader.exec_module(train)
  config = default.get_config()
  for item in a.override:
    train_speed._set(config, item)
  xtr, ytr, xte, yte, C = load_features(a.data, a.cache, config)
  tc, oc = config.train, config.optimizer
  spec = train.make_spec(config, xtr.num_features, C, 0)
  packed, t_pack = _timed(
      lambda: train._pack(xtr, ytr, config, spec, 1, 0), a.repeats)
  spec = train.with_steps(spec, packed.num_steps * tc.epochs,
                          oc.learning_rate, tc.l2)
  init = train.Params(np.zeros((xtr.num_features, C), np.float32),
                      np.zeros(C, np.float32))
  batches = jax.device_put(packed.device_arrays())
  hyper = (np.float32(oc.learning_rate), np.float32(tc.l2))
  args = lambda: (train.init_state(spec, init), batches, hyper,
                  np.int32(tc.seed), np.int32(0))
  import functools
  fn = jax.jit(functools.partial(train._epoch, spec), donate_argnums=0)
  lowered, t_lower = _timed(lambda: fn.lower(*args()), 1)
  compiled, t_compile = _timed(lowered.compile, 1)
  if a.dump_hlo:
    with open(a.dump_hlo, 'w') as f:
      f.write(compiled.as_text())
  state = args()[0]
  state = compiled(state, batches, hyper, np.int32(tc.seed), np.int32(0))[0]
  jax.block_until_ready(state)

  def epoch():
    nonlocal state
    state, losses = compiled(state, batches, hyper, np.int32(tc.seed),
                             np.int32(1))
    return np.asarray(losses)
  _, t_epoch = _timed(epoch, a.repeats)
  steps = packed.num_steps
  print(json.dumps(dict(
      steps=steps, T=packed.token_budget, U=int(packed.uids.shape[-1]),
      pack=t_pack, trace_lower=t_lower, compile=t_compile, epoch=t_epoch,
      us_per_step=round(t_epoch['best_s'] / steps * 1e6, 2),
      slots_per_s=round(xtr.nnz / t_epoch['best_s']))), flush=True)


if __name__ == '__main__':
  main()
