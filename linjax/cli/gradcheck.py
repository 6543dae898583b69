r"""The lecture's gradient check on real data, and why numerical gradients don't scale.

  linjax gradcheck [--data=train.tsv] [--sizes=10,100,1000,3000] \
      [--loss=softmax|sigmoid|hinge|modified_huber|MODULE:NAME]

1. Three-way check (`jax.grad`, the hand-derived `manual_grad`, central
   finite differences) on ``--num_docs`` documents of a real corpus (the demo
   corpus by default), restricted to the features they use, with the
   lecture's per-coordinate table of ``loss before / loss after +h / slope``.
   ``--loss`` checks any loss of the table (linjax/core/losses.py): without a
   hand-derived gradient (hinge, a user's), jax.grad against finite
   differences; a multi-label loss takes each document's label as its set.
2. Timing of the three gradients as the number of parameters F x C + C grows
   over ``--sizes`` (F) on a random sparse problem: a finite-difference
   gradient needs two loss evaluations per parameter, the analytic ones one
   forward and backward pass, so the ratio grows linearly with F.
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from linjax.cli import train as train_runner
from linjax.cli import config_check

FLAGS = flags.FLAGS

flags.DEFINE_string('data', '', 'Labelled corpus; empty: the demo corpus.')
flags.DEFINE_string('format', '', 'Corpus format; empty: from the extension.')
flags.DEFINE_integer('num_docs', 32, 'Documents in the real-data check.',
                     lower_bound=1)
flags.DEFINE_integer('table_rows', 10, 'Rows of the per-coordinate table.',
                     lower_bound=0)
flags.DEFINE_list('sizes', ['10', '100', '1000', '3000'],
                  'Numbers of features F for the timing table.')
flags.DEFINE_integer('classes', 4, 'Classes C in the timing table.',
                     lower_bound=2)
flags.DEFINE_float('l2', 0.0, 'L2 strength of the objective.', lower_bound=0)
flags.DEFINE_string('workdir', '', 'If set, write gradcheck.json here.')
flags.DEFINE_string('loss', 'softmax', 'Loss whose gradient is checked: a '
                    'name of the table of losses or MODULE:NAME.')


def real_data_check(data_path: str = '', format: str = '',  # pylint: disable=redefined-builtin
                    num_docs: int = 32, table_rows: int = 10,
                    l2: float = 0.0, loss='softmax'):
  """`check_grad` on a few real documents (default features config)."""
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  if data_path:
    corpus = data.read_corpus(data_path, format)
  else:
    from linjax.data import demo  # pylint: disable=g-import-not-at-top
    corpus = demo.demo_corpus(max_per_class=max(num_docs, 8))
  rng = np.random.default_rng(0)
  rows = np.sort(rng.permutation(len(corpus.texts))[:num_docs])
  texts = [corpus.texts[i] for i in rows]
  label_map = data.LabelMap.fit(corpus.labels)
  y = label_map.encode([corpus.labels[i] for i in rows])
  num_classes = max(label_map.num_classes, 2)
  if losses.get_loss(loss).multi_label:   # each document's label as its set
    y = np.eye(num_classes, dtype=np.uint8)[y]
  x = Featurizer().fit_transform(texts)
  return train_runner.quick_gradcheck(
      x, y, num_classes, l2, num_docs=num_docs, max_features=10**9,
      table_rows=table_rows, loss=loss)


def timing_row(num_features: int, num_classes: int, num_docs: int = 32,
               ids_per_doc: int = 8, l2: float = 0.0, seed: int = 0) -> dict:
  """Seconds of the three gradients on a random sparse problem of size F.

  Every gradient is timed warm (the second call of its jitted function);
  ``first_call_seconds`` is the finite differences' first call, compilation
  included.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import linjax  # pylint: disable=g-import-not-at-top
  with jax.enable_x64(True):
    rng = np.random.default_rng(seed)
    x = linjax.SparseFeatures(
        jnp.asarray(rng.integers(0, num_features, (num_docs, ids_per_doc)),
                    jnp.int32),
        jnp.asarray(rng.random((num_docs, ids_per_doc))))
    y = jnp.asarray(rng.integers(0, num_classes, num_docs))
    params = linjax.Params(
        W=jnp.asarray(0.1 * rng.normal(size=(num_features, num_classes))),
        b=jnp.zeros(num_classes, jnp.float64))
    fn = lambda p: linjax.objective(p, x, y, l2)
    seconds, grads = {}, {}
    for name, f in (('autodiff', jax.jit(jax.grad(fn))),
                    ('manual', jax.jit(lambda p: linjax.manual_grad(
                        p, x, y, l2)))):
      jax.block_until_ready(f(params))
      start = time.perf_counter()
      grads[name] = jax.block_until_ready(f(params))
      seconds[name] = time.perf_counter() - start
    numerical = jax.jit(lambda p: linjax.numerical_grad(fn, p))
    start = time.perf_counter()
    jax.block_until_ready(numerical(params))
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    grads['numerical'] = jax.block_until_ready(numerical(params))
    seconds['numerical'] = time.perf_counter() - start
    ref = np.asarray(grads['autodiff'].W)
    err = float(np.max(np.abs(np.asarray(grads['numerical'].W) - ref)) /
                max(np.max(np.abs(ref)), 1e-300))
  return dict(num_features=num_features,
              num_params=num_features * num_classes + num_classes,
              loss_evals=2 * (num_features * num_classes + num_classes),
              numerical_seconds=seconds['numerical'],
              first_call_seconds=compile_seconds,
              manual_seconds=seconds['manual'],
              autodiff_seconds=seconds['autodiff'],
              ratio=seconds['numerical'] / max(seconds['autodiff'], 1e-9),
              numerical_rel_error=err)


def format_timing(rows: list[dict]) -> str:
  lines = [f'{"F":>8s} {"params":>8s} {"loss evals":>10s} '
           f'{"numerical s":>12s} {"manual s":>10s} '
           f'{"autodiff s":>10s} {"num/auto":>9s} {"rel err":>9s}']
  for r in rows:
    lines.append(f'{r["num_features"]:8d} {r["num_params"]:8d} '
                 f'{r["loss_evals"]:10d} '
                 f'{r["numerical_seconds"]:12.4f} {r["manual_seconds"]:10.5f} '
                 f'{r["autodiff_seconds"]:10.5f} {r["ratio"]:9.0f} '
                 f'{r["numerical_rel_error"]:9.1e}')
  return '\n'.join(lines)


def _sizes(values) -> list[int]:
  try:
    sizes = [int(v) for v in values]
  except ValueError:
    raise config_check.ConfigError(
        f'--sizes must be a comma-separated list of integers, got '
        f'{",".join(values)}') from None
  if not sizes or min(sizes) < 1:
    raise config_check.ConfigError(f'--sizes must be integers >= 1, got '
                                   f'{",".join(values)}')
  return sizes


def main(argv):
  with config_check.runner_main(argv):
    sizes = _sizes(FLAGS.sizes)
    from linjax.core import losses  # pylint: disable=g-import-not-at-top
    try:
      losses.get_loss(FLAGS.loss)
    except losses.LossNotFound as e:
      raise config_check.ConfigError(f'--loss must name a loss: {e}') from None
    if FLAGS.data and not os.path.exists(FLAGS.data):
      raise config_check.ConfigError(f'--data must name an existing file or '
                                     f'folder, got {FLAGS.data!r}')
    logging.info('three-way check on %d documents of %s', FLAGS.num_docs,
                 FLAGS.data or 'the demo corpus')
    report = real_data_check(FLAGS.data, FLAGS.format, FLAGS.num_docs,
                             FLAGS.table_rows, FLAGS.l2, FLAGS.loss)
    print(f'real data ({FLAGS.data or "demo corpus"}, {FLAGS.num_docs} '
          f'documents, only the features they use, {FLAGS.loss} loss):')
    print(report.format())
    rows = []
    for size in sizes:
      logging.info('timing F=%d', size)
      rows.append(timing_row(size, FLAGS.classes, l2=FLAGS.l2))
    print(f'\ngradient cost as the parameters grow (C={FLAGS.classes}, 32 '
          f'documents, 8 ids each, float64, warm jitted calls):')
    print(format_timing(rows))
    print('numerical gradients need 2 loss evaluations per parameter: '
          'fine for checking, hopeless for training.')
    if FLAGS.workdir:
      os.makedirs(FLAGS.workdir, exist_ok=True)
      out = os.path.join(FLAGS.workdir, 'gradcheck.json')
      with open(out, 'w', encoding='utf-8') as f:
        json.dump(dict(check=dict(passed=report.passed,
                                  num_params=report.num_params,
                                  max_rel_error=report.max_rel_error,
                                  seconds=report.seconds,
                                  table=report.table),
                       timing=rows), f, indent=1)
      print(f'wrote {out}')
    if not report.passed:
      raise SystemExit('error: gradient check FAILED (see the report above)')


def command() -> None:
  """``linjax gradcheck``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
