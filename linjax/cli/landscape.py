r"""Loss landscapes: the lecture's search demos and slices of a trained model.

  linjax landscape --workdir=land1 [--config.train.epochs=3]
  linjax landscape --workdir=land2 --model=run1/model [--data=test.tsv]

1. Random search against gradient descent on w^2 and w1^2 + w2^2 with the
   same number of loss evaluations (table + plots).
2. 1-D and 2-D slices of the objective (the model's own loss, plus its L2
   penalty) around a trained model (one trained in this run with
   --config, or --model) along filter-normalised random directions,
   evaluated on up to --num_docs training documents (or of --data).

Writes landscape.json and PNGs (search_1d, search_2d, search_paths,
slice_1d, slice_2d) into --workdir; a finished run there (landscape.json)
is refused unless ``--overwrite``, and a failed one removes what it added.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import labelled_input
from linjax.cli import train as train_runner
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS

train_runner.define_config_flag(
    'Config of the model trained in this run (ignored with --model).')
flags.DEFINE_string('workdir', None, 'Output directory.')
flags.DEFINE_string('model', '', 'A saved model; empty: train one first.')
flags.DEFINE_string('data', '', 'Corpus for the slices with --model; empty: '
                    'the training split of the model\'s own config.')
flags.DEFINE_integer('num_evals', 30, 'Loss evaluations per search method.',
                     lower_bound=1)
flags.DEFINE_float('demo_learning_rate', 0.1, 'Gradient descent step size in '
                   'the demos.', lower_bound=0)
flags.DEFINE_integer('grid', 21, 'Points per axis of the slices.',
                     lower_bound=3)
flags.DEFINE_float('span', 1.0, 'Slices cover [-span, span] along each '
                   'direction.', lower_bound=0)
flags.DEFINE_integer('num_docs', 2000, 'Documents the slices average over.',
                     lower_bound=1)
flags.DEFINE_integer('seed', 0, 'Seed of the demos and directions.')
flags.DEFINE_bool('overwrite', False, 'Replace a finished landscape run in '
                  '--workdir.')


def search_demos(num_evals: int, learning_rate: float, seed: int,
                 workdir: str | None = None) -> list[dict]:
  """The lecture's random search vs gradient descent, for D = 1 and 2."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from linjax.analysis import loss_landscape as landscape  # pylint: disable=g-import-not-at-top
  rows = []
  for dim in (1, 2):
    out = landscape.compare_search(dim, num_evals, jax.random.PRNGKey(seed),
                                   learning_rate=learning_rate)
    rows.append(dict(loss='w^2' if dim == 1 else 'w1^2 + w2^2', dim=dim,
                     num_evals=num_evals, random_best=out['random_best'],
                     gradient_best=out['gradient_best']))
    if workdir:
      from linjax.analysis import plots  # pylint: disable=g-import-not-at-top
      plots.search_curves({'random search': out['random'].best,
                           'gradient descent': out['gradient'].best},
                          os.path.join(workdir, f'search_{dim}d.png'))
      if dim == 2:
        axis = jnp.linspace(-3, 3, 61)
        grid = jax.vmap(jax.vmap(lambda a, b: landscape.sum_of_squares(
            jnp.stack([a, b])), (None, 0)), (0, None))(axis, axis)
        plots.landscape_2d(axis, axis, grid,
                           os.path.join(workdir, 'search_paths.png'),
                           paths={'random search': out['random'].points,
                                  'gradient descent': out['gradient'].points},
                           label='w1^2 + w2^2', axis_labels=('w1', 'w2'))
  return rows


def format_demos(rows: list[dict]) -> str:
  lines = [f'{"loss":>12s} {"evals":>6s} {"random search":>14s} '
           f'{"gradient descent":>17s}']
  for r in rows:
    lines.append(f'{r["loss"]:>12s} {r["num_evals"]:6d} '
                 f'{r["random_best"]:14.3e} {r["gradient_best"]:17.3e}')
  return '\n'.join(lines)


def slices(model, texts, y, l2: float, grid: int, span: float, seed: int,
           workdir: str | None = None, config=None) -> dict:
  """1-D and 2-D slices of the objective (the model's loss, `model_loss`,
  plus ``l2``) around ``model.params``; ``y`` int [N] or multi-hot [N, C]
  as the loss takes."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import linjax  # pylint: disable=g-import-not-at-top
  from linjax.analysis import loss_landscape as landscape  # pylint: disable=g-import-not-at-top
  ids, weights = model.featurizer.transform(texts).to_padded()
  x = linjax.SparseFeatures(jnp.asarray(ids), jnp.asarray(weights))
  params = linjax.Params(jnp.asarray(model.params.W),
                         jnp.asarray(model.params.b))
  y = jnp.asarray(y)
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  d1 = landscape.filter_normalized_direction(k1, params)
  d2 = landscape.filter_normalized_direction(k2, params)
  alphas = jnp.linspace(-span, span, grid)
  loss = model_loss(model, config or {})
  line = np.asarray(landscape.slice_1d(params, x, y, d1, alphas, l2, loss))
  # The direction of the parameters themselves: alpha = -1 is the zero
  # initialisation, 0 the model, > 0 the same templates scaled up.
  toward_init = np.asarray(landscape.slice_1d(params, x, y, params, alphas,
                                              l2, loss))
  plane = np.asarray(landscape.slice_2d(params, x, y, d1, d2, alphas, alphas,
                                        l2, loss))
  centre = float(landscape.slice_1d(params, x, y, d1, jnp.zeros(1), l2,
                                    loss)[0])
  if workdir:
    from linjax.analysis import plots  # pylint: disable=g-import-not-at-top
    plots.landscape_1d(alphas, {'random (filter-normalised)': line,
                                'W itself (-1: zero init)': toward_init},
                       os.path.join(workdir, 'slice_1d.png'))
    plots.landscape_2d(alphas, alphas, plane,
                       os.path.join(workdir, 'slice_2d.png'))
  return dict(alphas=np.asarray(alphas).tolist(), slice_1d=line.tolist(),
              slice_toward_init=toward_init.tolist(),
              slice_2d=plane.tolist(), objective_at_model=centre,
              num_docs=len(texts), l2=l2)


def _model_and_data(workdir: str):
  """The model (trained now or --model) and its texts/labels for slices."""
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  if FLAGS.model:
    model = workdir_lib.load_model(FLAGS.model)
    config = ml_collections.ConfigDict(model.config) if model.config else (
        FLAGS.config)
  else:
    config = FLAGS.config
    config_check.validate(config)
    train_dir = os.path.join(workdir, 'train')
    logging.info('training a model in %s', train_dir)
    # train/ is this runner's own scratch folder: replace a previous one.
    train_runner.train_and_evaluate(config, train_dir, overwrite=True)
    model = saved_model.load(os.path.join(train_dir, 'model'))
  labels = model.label_map
  if FLAGS.data:   # read as the model was trained (multi-label or not)
    corpus, multi = labelled_input.read_for_model(FLAGS.data, model)
    texts = corpus.texts
    y = (labels.encode_multi(corpus.labels, unknown='ignore') if multi else
         labels.encode(corpus.labels, corpus.sources))
  else:
    splits = train_runner.load_splits(config)
    texts = splits.train_texts
    y = (labels.encode_multi(splits.label_map.decode_multi(splits.train_y))
         if model.multi_label else
         labels.encode(splits.label_map.decode(splits.train_y)))
  return model, config, texts, y


def model_loss(model, config):
  """The per-example loss the model trained with: its table entry, with
  the run's loss options (e.g. ``train.label_smoothing``) bound."""
  entry = model.loss_entry
  train = config.get('train', {}) if hasattr(config, 'get') else {}
  settings = {k: train.get(k) for k in entry.options if train.get(k)}
  return entry.with_settings(**settings) if settings else entry


def main(argv):
  console.short_log_format()
  with workdir_lib.cleaned_up_on_failure(
      FLAGS.workdir, finished='landscape.json'), (
      config_check.runner_main(argv, workdir=FLAGS.workdir)):
    workdir = FLAGS.workdir
    workdir_lib.ensure_writable_dir(workdir, '--workdir')
    if (os.path.isfile(os.path.join(workdir, 'landscape.json')) and
        not FLAGS.overwrite):
      raise workdir_lib.PathError(
          f'--workdir={workdir} holds a finished landscape run '
          f'(landscape.json); nothing was changed. Pass --overwrite to '
          f'replace it, or choose another --workdir.')
    if FLAGS.model:   # before any work
      workdir_lib.check_model_dir(FLAGS.model)
    demos = search_demos(FLAGS.num_evals, FLAGS.demo_learning_rate,
                         FLAGS.seed, workdir)
    print('lowest loss reached with the same number of loss evaluations:')
    print(format_demos(demos))
    model, config, texts, y = _model_and_data(workdir)
    rng = np.random.default_rng(FLAGS.seed)
    keep = np.sort(rng.permutation(len(texts))[:FLAGS.num_docs])
    result = slices(model, [texts[i] for i in keep], np.asarray(y)[keep],
                    float(config.train.l2), FLAGS.grid, FLAGS.span,
                    FLAGS.seed, workdir, config)
    line, init = result['slice_1d'], result['slice_toward_init']
    which = f'documents of --data={FLAGS.data}' if FLAGS.data else (
        'training documents')
    print(f'\nobjective around the model ({result["num_docs"]} {which}): '
          f'{result["objective_at_model"]:.4f} at the model; '
          f'along a random filter-normalised direction over '
          f'[-{FLAGS.span:g}, {FLAGS.span:g}]: {min(line):.4f}..'
          f'{max(line):.4f}; along W itself: {min(init):.4f}..'
          f'{max(init):.4f}')
    out = os.path.join(workdir, 'landscape.json')   # last: finished
    workdir_lib.write_atomic(out, json.dumps(dict(search=demos,
                                                  slices=result)))
    print(f'wrote {out} and plots in {workdir}')


def command() -> None:
  """``linjax landscape``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
