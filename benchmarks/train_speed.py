r"""Training speed of linjax against fastText on one corpus (a benchmark).

  python -m benchmarks.train_speed --data_dir=../shared/data \
      [--corpus=healthtweets] [--epochs=5] [--threads=2] \
      [--override=optimizer.learning_rate=24,train.l2=1e-6] [--skip_fasttext] \
      [--noprecompile] [--cache_dir=DIR] [--sweep=8,16,32:0,1e-6]

Featurises ``DATA_DIR/CORPUS/train.tsv`` and ``test.tsv`` (label<TAB>text,
header line; ``--data_dir`` is required, there is no default folder) with the
default config's features (experiments/configs/default.py: hashed word and
word-shape n-grams, sublinear TF-IDF, L2-normalised), then times
`linjax.engine.training.fit` (packing + compile + epochs, cold, in this
process; by default the program compiles in a background thread while the
host featurises, as experiments.train does: ``featurize_fit_s`` is the wall
time of both, ``compile_s`` what fit still waited) and fastText's
``train_supervised`` (dim 10, wordNgrams 2, the same call as
/work/shared/bench/peers.py; ``fit_s`` on its prepared input file,
``fit_raw_s`` from the raw texts, writing that file included), and prints
one JSON line each.

The options are the default config's with ``train.epochs = --epochs``
(fastText's epochs too), then the ``--override`` items (``section.key=value``,
see benchmarks/config_overrides.py). ``--sweep=LRS:L2S`` also times a vmapped
sweep over that grid against one `fit` per grid point (a held-out 10 % of
train as validation).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time

from absl import app
from absl import flags

# Nothing that imports JAX or linjax at module level: the run times those
# imports (import_s).
from benchmarks import peers

read_tsv = peers.read_tsv
TOKEN = peers.TOKEN

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'Folder of corpora, each NAME/train.tsv '
                    'and NAME/test.tsv.')
flags.DEFINE_string('corpus', 'healthtweets', 'Corpus (folder name in '
                    '--data_dir) to train on.')
flags.DEFINE_integer('epochs', 5, 'Epochs of both systems (train.epochs).')
flags.DEFINE_integer('threads', 2, 'fastText threads.')
flags.DEFINE_bool('skip_fasttext', False, 'Time linjax only.')
flags.DEFINE_bool('precompile', True, 'Compile the training program while '
                  'featurising (experiments.train.start_precompile); '
                  '--noprecompile: inside fit, after it.')
flags.DEFINE_string('cache_dir', '', 'JAX persistent compilation cache (a '
                    'warm rerun skips XLA compilation); empty: off.')
flags.DEFINE_string('sweep', '', 'LRS:L2S, e.g. 8,16,32:0,1e-6: time a '
                    'vmapped sweep against one fit() per grid point '
                    '(held-out 10% as val); empty: no sweep.')
flags.DEFINE_list('override', [], 'section.key=value overrides of '
                  'experiments/configs/default.py, e.g. '
                  'optimizer.learning_rate=24,train.l2=1e-6.')


def run_fasttext(train, test, epochs, threads):
  import fasttext  # pylint: disable=g-import-not-at-top
  fasttext.FastText.eprint = lambda *a, **k: None
  raw_start = time.perf_counter()  # raw text -> fastText's input file
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
  fit_raw = time.perf_counter() - raw_start
  os.remove(path)
  pred = [m.predict(' '.join(TOKEN.findall(x.lower())))[0][0][9:]
          for x in test[0]]
  acc = sum(p == t for p, t in zip(pred, test[1])) / len(pred)
  return dict(system='fasttext', fit_s=round(fit, 3),
              fit_raw_s=round(fit_raw, 3), accuracy=round(acc, 4))


def parse_sweep(spec: str) -> tuple[list, list] | None:
  """``'8,16:0,1e-6'`` -> ([8.0, 16.0], [0.0, 1e-6]); None if malformed."""
  lrs, sep, l2s = spec.partition(':')
  try:
    grid = [[float(v) for v in part.split(',')] for part in (lrs, l2s)]
  except ValueError:
    return None
  if (not sep or any(not 0 < v < float('inf') for v in grid[0])
      or any(not 0 <= v < float('inf') for v in grid[1])):
    return None
  return grid[0], grid[1]


def run_sweep_timing(grid, options, x, y, num_classes):
  """Times `hyper_sweep.sweep` over ``grid`` against one `fit` per point."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from linjax.engine import hyper_sweep  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  lrs, l2s = grid
  rng = np.random.default_rng(0)
  order = rng.permutation(x.num_docs)
  held = x.num_docs // 10
  xv, yv = x.take(order[:held]), y[order[:held]]
  xt, yt = x.take(order[held:]), y[order[held:]]
  start = time.perf_counter()
  result = hyper_sweep.sweep(xt, yt, num_classes, learning_rates=lrs, l2s=l2s,
                             val_x=xv, val_y=yv, optimizer=options.optimizer,
                             training=options.training)
  sweep_s = time.perf_counter() - start
  start = time.perf_counter()
  for lr in lrs:
    for l2 in l2s:
      training.fit(
          xt, yt, num_classes,
          optimizer=dataclasses.replace(options.optimizer, learning_rate=lr),
          training=dataclasses.replace(options.training, l2=l2),
          val_x=xv, val_y=yv)
  fits_s = time.perf_counter() - start
  print(json.dumps(dict(
      system='sweep', models=len(result.grid), sweep_s=round(sweep_s, 3),
      sweep_compile_s=round(result.compile_seconds, 3),
      separate_fits_s=round(fits_s, 3), best_lr=result.best_lr,
      best_l2=result.best_l2,
      best_val_accuracy=max(g['val_accuracy'] for g in result.grid))),
        flush=True)


def _fail(message: str) -> None:
  sys.exit(f'error: {message}')


def _check_flags() -> tuple[str, tuple | None]:
  """The corpus folder and the sweep grid; exits naming a bad flag."""
  if not FLAGS.data_dir:
    _fail('--data_dir is required: a folder of corpora (NAME/train.tsv, '
          'NAME/test.tsv).')
  if not os.path.isdir(os.path.expanduser(FLAGS.data_dir)):
    _fail(f'--data_dir: no such folder: {FLAGS.data_dir}')
  corpus_dir = os.path.join(os.path.expanduser(FLAGS.data_dir), FLAGS.corpus)
  for name in ('train.tsv', 'test.tsv'):
    if not os.path.isfile(os.path.join(corpus_dir, name)):
      _fail(f'--corpus: no {FLAGS.corpus}/{name} in {FLAGS.data_dir}')
  for flag in ('epochs', 'threads'):
    if getattr(FLAGS, flag) < 1:
      _fail(f'--{flag} must be >= 1, got {getattr(FLAGS, flag)}')
  if FLAGS.cache_dir and os.path.isfile(os.path.expanduser(FLAGS.cache_dir)):
    _fail(f'--cache_dir must be a folder, not a file: {FLAGS.cache_dir}')
  grid = parse_sweep(FLAGS.sweep) if FLAGS.sweep else None
  if FLAGS.sweep and grid is None:
    _fail(f'--sweep: expected LRS:L2S like 8,16,32:0,1e-6 (learning rates '
          f'> 0, L2 strengths >= 0), got {FLAGS.sweep!r}')
  return corpus_dir, grid


def main(argv):
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  corpus_dir, grid = _check_flags()

  start = time.perf_counter()
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from benchmarks import config_overrides  # pylint: disable=g-import-not-at-top
  from linjax.cli import config_check  # pylint: disable=g-import-not-at-top
  from linjax.cli import train as train_runner  # pylint: disable=g-import-not-at-top
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  from linjax.engine import chunk_program  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  jnp.zeros(1).block_until_ready()   # backend start-up, paid once
  import_s = time.perf_counter() - start

  with config_check.exit_on_user_error():
    base = default.get_config()
    base.train.epochs = FLAGS.epochs
    options = config_overrides.apply_overrides(base, FLAGS.override,
                                               '--override')
    if FLAGS.cache_dir:
      chunk_program.enable_compile_cache(FLAGS.cache_dir)  # after a compile

    tr = read_tsv(os.path.join(corpus_dir, 'train.tsv'))
    te = read_tsv(os.path.join(corpus_dir, 'test.tsv'))
    names = sorted(set(tr[1]))
    index = {n: i for i, n in enumerate(names)}
    start = time.perf_counter()
    if FLAGS.precompile:  # as experiments.train does
      train_runner.start_precompile(options, tr[0], len(names))
    featurizer = Featurizer.from_options(options.features)
    x_train = featurizer.fit_transform(tr[0])
    featurize_s = time.perf_counter() - start
    y_train = np.array([index[n] for n in tr[1]], np.int32)

    fit_start = time.perf_counter()
    result = training.fit(x_train, y_train, len(names),
                          optimizer=options.optimizer,
                          training=options.training)
    fit_s = time.perf_counter() - fit_start
    total_s = time.perf_counter() - start   # featurise + fit, as a user waits
    x_test = featurizer.transform(te[0])
    y_test = np.array([index[n] for n in te[1]], np.int32)
    acc = scoring.evaluate(result.params, x_test, y_test)['accuracy']
    steady = [h for h in result.history[1:]] or result.history
    tokens = sum(len(TOKEN.findall(t)) for t in tr[0])
    epoch_s = float(np.mean([h['seconds'] for h in steady]))
    print(json.dumps(dict(
        system='linjax', featurize_fit_s=round(total_s, 3),
        fit_s=round(fit_s, 3), precompile=int(FLAGS.precompile),
        pack_s=round(result.pack_seconds, 3),
        compile_s=round(result.compile_seconds, 3),
        epochs_s=round(result.train_seconds, 3),
        steady_tokens_per_s=round(tokens / epoch_s),
        steady_feature_slots_per_s=round(steady[-1]['tokens_per_s']),
        accuracy=round(acc, 4), update=result.update,
        import_s=round(import_s, 3), featurize_s=round(featurize_s, 3),
        train_docs=x_train.num_docs, train_tokens=tokens, nnz=x_train.nnz,
        devices=jax.device_count())), flush=True)
    if grid:
      run_sweep_timing(grid, options, x_train, y_train, len(names))
    if not FLAGS.skip_fasttext:
      print(json.dumps(run_fasttext(tr, te, FLAGS.epochs, FLAGS.threads)),
            flush=True)


if __name__ == '__main__':
  app.run(main)
