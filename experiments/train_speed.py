"""Training speed of linjax against fastText on one corpus (a benchmark).

Usage:
  python -m experiments.train_speed [--data=/work/shared/data/healthtweets]
      [--epochs=5] [--threads=2] [--override key=value ...]

Featurises ``train.tsv``/``test.tsv`` (label<TAB>text, header line) with the
default config's features (unigrams + bigrams hashed to 2**20, L2-normalised
counts), then times `linjax.train.fit` (packing + compile + epochs, cold, in
this process; by default the program compiles in a background thread while
the host featurises, as experiments.train does: ``featurize_fit_s`` is the
wall time of both, ``compile_s`` what fit still waited) and fastText's
``train_supervised`` (dim 10, wordNgrams 2, the
same call as /work/shared/bench/peers.py), and prints one JSON line each.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from experiments import peers


read_tsv = peers.read_tsv
TOKEN = peers.TOKEN


def run_fasttext(train, test, epochs, threads):
  import fasttext
  fasttext.FastText.eprint = lambda *a, **k: None
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False,
                                   encoding='utf-8') as f:
    for text, label in zip(*train):
      f.write(peers.fasttext_line(label, text) + '\n')
    path = f.name
  start = time.perf_counter()
  m = fasttext.train_supervised(input=path, epoch=epochs, lr=0.5,
                                wordNgrams=2, dim=10, bucket=2_000_000,
                                minCount=1, thread=threads, verbose=0, seed=0)
  fit = time.perf_counter() - start
  os.remove(path)
  pred = [m.predict(' '.join(TOKEN.findall(x.lower())))[0][0][9:]
          for x in test[0]]
  acc = sum(p == t for p, t in zip(pred, test[1])) / len(pred)
  return dict(system='fasttext', fit_s=round(fit, 3), accuracy=round(acc, 4))


def _set(config, item):
  key, _, value = item.partition('=')
  node = config
  *path, last = key.split('.')
  for part in path:
    node = node[part]
  old = node[last]
  node[last] = type(old)(value) if not isinstance(old, bool) else (
      value.lower() in ('1', 'true'))


def run_sweep_timing(spec, config, x, y, num_classes):
  import numpy as np
  from linjax.engine import hyper_sweep as sweep
  from linjax.engine import training as train_lib
  lrs, l2s = ([float(v) for v in part.split(',')] for part in spec.split(':'))
  rng = np.random.default_rng(0)
  order = rng.permutation(x.num_docs)
  held = x.num_docs // 10
  xv, yv = x.take(order[:held]), y[order[:held]]
  xt, yt = x.take(order[held:]), y[order[held:]]
  start = time.perf_counter()
  result = sweep.run_sweep(xt, yt, num_classes, config, lrs, l2s, xv, yv)
  sweep_s = time.perf_counter() - start
  start = time.perf_counter()
  for lr in lrs:
    for l2 in l2s:
      one = config.copy_and_resolve_references()
      one.optimizer.learning_rate, one.train.l2 = lr, l2
      train_lib.fit(xt, yt, num_classes, one, val_x=xv, val_y=yv)
  fits_s = time.perf_counter() - start
  print(json.dumps(dict(
      system='sweep', models=len(result.grid), sweep_s=round(sweep_s, 3),
      sweep_compile_s=round(result.compile_seconds, 3),
      separate_fits_s=round(fits_s, 3), best_lr=result.best_lr,
      best_l2=result.best_l2,
      best_val_accuracy=max(g['val_accuracy'] for g in result.grid))),
        flush=True)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--data', default='/work/shared/data/healthtweets')
  ap.add_argument('--epochs', type=int, default=5)
  ap.add_argument('--threads', type=int, default=2)
  ap.add_argument('--override', nargs='*', default=[])
  ap.add_argument('--skip_fasttext', action='store_true')
  ap.add_argument('--precompile', type=int, default=1,
                  help='1: compile the training program while featurising '
                  '(linjax.train.precompile); 0: inside fit, after it')
  ap.add_argument('--cache_dir', default='',
                  help='JAX persistent compilation cache (a warm rerun skips '
                  'XLA compilation)')
  ap.add_argument('--sweep', default='',
                  help='lrs:l2s, e.g. 8,16,32:0,1e-6: time a vmapped sweep '
                  'against one fit() per grid point (held-out 10%% as val)')
  a = ap.parse_args()

  start = time.perf_counter()
  import jax
  import jax.numpy as jnp
  import numpy as np
  from experiments import train as train_runner
  from experiments.configs import default
  from linjax.text import featurizer as text
  from linjax.engine import training as train_lib
  jnp.zeros(1).block_until_ready()   # backend start-up, paid once
  import_s = time.perf_counter() - start
  if a.cache_dir:
    train_lib.enable_compile_cache(a.cache_dir)  # after a compile: must work

  config = default.get_config()
  config.train.epochs = a.epochs
  for item in a.override:
    _set(config, item)
  tr = read_tsv(os.path.join(a.data, 'train.tsv'))
  te = read_tsv(os.path.join(a.data, 'test.tsv'))
  names = sorted(set(tr[1]))
  index = {n: i for i, n in enumerate(names)}
  start = time.perf_counter()
  if a.precompile:  # as experiments.train does: compile while featurising
    train_runner.start_precompile(config, tr[0], len(names))
  featurizer = text.Featurizer.from_config(config.features)
  x_train = featurizer.fit_transform(tr[0])
  featurize_s = time.perf_counter() - start
  y_train = np.array([index[n] for n in tr[1]], np.int32)

  fit_start = time.perf_counter()
  result = train_lib.fit(x_train, y_train, len(names), config)
  fit_s = time.perf_counter() - fit_start
  total_s = time.perf_counter() - start   # featurise + fit, as a user waits
  x_test = featurizer.transform(te[0])
  y_test = np.array([index[n] for n in te[1]], np.int32)
  acc = train_lib.evaluate(result.params, x_test, y_test)['accuracy']
  steady = [h for h in result.history[1:]] or result.history
  tokens = sum(len(TOKEN.findall(t)) for t in tr[0])
  epoch_s = float(np.mean([h['seconds'] for h in steady]))
  print(json.dumps(dict(
      system='linjax', featurize_fit_s=round(total_s, 3),
      fit_s=round(fit_s, 3), precompile=a.precompile,
      pack_s=round(result.pack_seconds, 3),
      compile_s=round(result.compile_seconds, 3),
      epochs_s=round(result.train_seconds, 3),
      steady_tokens_per_s=round(tokens / epoch_s),
      steady_feature_slots_per_s=round(steady[-1]['tokens_per_s']),
      accuracy=round(acc, 4), update=result.update,
      import_s=round(import_s, 3), featurize_s=round(featurize_s, 3),
      train_docs=x_train.num_docs, train_tokens=tokens, nnz=x_train.nnz,
      devices=jax.device_count())), flush=True)
  if a.sweep:
    run_sweep_timing(a.sweep, config, x_train, y_train, len(names))
  if not a.skip_fasttext:
    print(json.dumps(run_fasttext(tr, te, a.epochs, a.threads)), flush=True)


if __name__ == '__main__':
  main()
