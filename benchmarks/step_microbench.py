r"""Micro-benchmark of the training engine's phases on one corpus.

  python -m benchmarks.step_microbench --data_dir=../shared/data \
      [--corpus=healthtweets] [--repeats=5] [--cache=/tmp/healthtweets.npz] \
      [--override=train.token_budget=256,...] [--dump_hlo=FILE]

Featurises ``DATA_DIR/CORPUS/train.tsv`` and ``test.tsv`` once with the
default config's features (``--data_dir`` is required, there is no default
folder; with ``--cache=FILE.npz`` the features are kept there for later runs:
delete it when the features config or the corpus changes), then times
separately: packing, tracing + lowering, XLA compilation, and one epoch (best
and median of --repeats, wall and process CPU time), in one JSON line. The
config is experiments/configs/default.py with the ``--override`` items
(``section.key=value``, see benchmarks/config_overrides.py). The machine is
shared and noisy: compare best-of-N numbers from the same run. To time a
change to the engine against the current one, run the tool in two checkouts
(``git worktree add``) one after the other.
"""

from __future__ import annotations

import functools
import json
import os
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import config_overrides
from benchmarks import peers
from linjax.cli import config_check

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'Folder of corpora, each NAME/train.tsv '
                    'and NAME/test.tsv.')
flags.DEFINE_string('corpus', 'healthtweets', 'Corpus (folder name in '
                    '--data_dir).')
flags.DEFINE_string('cache', '', 'Featurised corpus (.npz) kept between runs; '
                    'delete it when the features config or the corpus '
                    'changes. Empty: featurise every run.')
flags.DEFINE_integer('repeats', 5, 'Timed runs of packing and of the epoch.')
flags.DEFINE_list('override', [], 'section.key=value overrides of '
                  'experiments/configs/default.py.')
flags.DEFINE_string('dump_hlo', '', 'Write the optimised HLO of the epoch to '
                    'this file.')


def load_features(data, cache, features):
  """(x_train, y_train, x_test, y_test, C) of the corpus folder ``data``.

  Featurised with ``features`` (FeaturizerOptions), or read from ``cache``
  (an .npz path; written when absent, '' for none).
  """
  from linjax.text import csr  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  if cache and os.path.exists(cache):
    z = np.load(cache)
    mk = lambda p: csr.CsrFeatures(z[p + 'indptr'], z[p + 'ids'],
                                   z[p + 'weights'], int(z['F']))
    return mk('tr_'), z['ytr'], mk('te_'), z['yte'], int(z['C'])
  tr = peers.read_tsv(os.path.join(data, 'train.tsv'))
  te = peers.read_tsv(os.path.join(data, 'test.tsv'))
  names = sorted(set(tr[1]))
  index = {n: i for i, n in enumerate(names)}
  featurizer = Featurizer.from_options(features)
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


def _check_flags() -> str:
  """The corpus folder; ConfigError naming a bad flag."""
  data_dir = os.path.expanduser(FLAGS.data_dir)
  if not os.path.isdir(data_dir):
    raise config_check.ConfigError(f'--data_dir: no such folder: '
                                   f'{FLAGS.data_dir}')
  corpus_dir = os.path.join(data_dir, FLAGS.corpus)
  for name in ('train.tsv', 'test.tsv'):
    if not os.path.isfile(os.path.join(corpus_dir, name)):
      raise config_check.ConfigError(f'--corpus: no {FLAGS.corpus}/{name} in '
                                     f'{FLAGS.data_dir}')
  if FLAGS.repeats < 1:
    raise config_check.ConfigError(f'--repeats must be >= 1, got '
                                   f'{FLAGS.repeats}')
  if FLAGS.cache and not FLAGS.cache.endswith('.npz'):
    # np.savez would append .npz, and the next run would not find it.
    raise config_check.ConfigError(f'--cache must end in .npz, got '
                                   f'{FLAGS.cache!r}')
  for flag in ('cache', 'dump_hlo'):
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(
        getattr(FLAGS, flag))))
    if getattr(FLAGS, flag) and not os.path.isdir(folder):
      raise config_check.ConfigError(f'--{flag}: no such folder: {folder}')
  return corpus_dir


def whole_epoch(spec, state, batches, hyper, seed, epoch):
  """A whole epoch in one program: (state, losses [G]).

  ``batches`` are all G packed steps, visited in `step_order.batch_order`
  (drawn here on device with the same hash). `training.fit` instead feeds
  host-ordered chunks of K steps (`chunk_program.run_epoch`), so that its
  program does not depend on G; one program per epoch shows the step's cost
  without the host loop.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from linjax.engine import chunk_program  # pylint: disable=g-import-not-at-top
  from linjax.engine import traced_schedule  # pylint: disable=g-import-not-at-top
  from linjax.engine.step_order import mix32  # pylint: disable=g-import-not-at-top
  num_steps = batches.weights.shape[0]
  seed = jnp.asarray(seed).astype(jnp.uint32)
  epoch = jnp.asarray(epoch).astype(jnp.uint32)
  base = mix32(mix32(seed + np.uint32(0x9E3779B9)) ^ epoch)
  keys = mix32(mix32(jnp.arange(num_steps, dtype=jnp.uint32) ^ base) + base)
  order = jnp.argsort(keys, stable=True)
  batches = jax.tree_util.tree_map(lambda a: a[order], batches)
  return chunk_program.run_chunk(spec, state, batches, hyper,
                                 traced_schedule.schedule_args(spec),
                                 num_steps)


def main(argv):
  with config_check.runner_main(argv, data_dir=FLAGS.data_dir):
    corpus_dir = _check_flags()
    from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
    options = config_overrides.apply_overrides(default.get_config(),
                                               FLAGS.override, '--override')
    import jax  # pylint: disable=g-import-not-at-top
    from linjax.core import model  # pylint: disable=g-import-not-at-top
    from linjax.engine import run_loop  # pylint: disable=g-import-not-at-top
    from linjax.engine import step  # pylint: disable=g-import-not-at-top
    xtr, ytr, _, _, C = load_features(corpus_dir, FLAGS.cache,
                                      options.features)
    repeats = FLAGS.repeats
    oc, tc = options.optimizer, options.training
    spec = step.make_spec(oc, tc, xtr.num_features, C, 0)
    packed, t_pack = _timed(
        lambda: run_loop.pack_steps(xtr, ytr, tc, spec, 1, 0), repeats)
    spec = step.with_steps(spec, packed.num_steps * tc.epochs,
                           oc.learning_rate, tc.l2)
    init = model.Params(np.zeros((xtr.num_features, C), np.float32),
                        np.zeros(C, np.float32))
    batches = jax.device_put(packed.device_arrays())
    hyper = (np.float32(oc.learning_rate), np.float32(tc.l2))
    args = lambda: (step.init_state(spec, init), batches, hyper,
                    np.int32(tc.seed), np.int32(0))
    fn = jax.jit(functools.partial(whole_epoch, spec), donate_argnums=0)
    lowered, t_lower = _timed(lambda: fn.lower(*args()), 1)
    compiled, t_compile = _timed(lowered.compile, 1)
    if FLAGS.dump_hlo:
      with open(FLAGS.dump_hlo, 'w', encoding='utf-8') as f:
        f.write(compiled.as_text())
    state = args()[0]
    state = compiled(state, batches, hyper, np.int32(tc.seed), np.int32(0))[0]
    jax.block_until_ready(state)

    def epoch():
      nonlocal state
      state, losses = compiled(state, batches, hyper, np.int32(tc.seed),
                               np.int32(1))
      return np.asarray(losses)
    _, t_epoch = _timed(epoch, repeats)
    steps = packed.num_steps
    print(json.dumps(dict(
        steps=steps, T=packed.token_budget, U=int(packed.uids.shape[-1]),
        pack=t_pack, trace_lower=t_lower, compile=t_compile, epoch=t_epoch,
        us_per_step=round(t_epoch['best_s'] / steps * 1e6, 2),
        slots_per_s=round(xtr.nnz / t_epoch['best_s']))), flush=True)


if __name__ == '__main__':
  app.run(main)
