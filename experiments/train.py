r"""Trains and evaluates a linear text classifier; writes everything to workdir.

  python -m experiments.train --config=experiments/configs/default.py \
      --workdir=/tmp/linjax-demo [--config.optimizer.learning_rate=0.5 ...]

The work is `train_and_evaluate(config, workdir)`; `main` only parses flags
and turns errors a user can cause into a one-line message and exit status 1.

Steps: validate the config (before any work); load the data (``data.train``
or the demo corpus; ``data.test`` or a stratified held-out split of
``data.test_fraction``; a stratified validation split ``data.val_fraction``
carved from train); fit the featurizer on the training split only; a quick
three-way gradient check on a small batch; `linjax.engine.training.fit`
(the config becomes the library's options in experiments/config_check.py);
evaluate on
the test split (used only here). Writes into workdir:

  results.json     test/val metrics, timings, gradient check, config
  metrics.jsonl    one line per epoch
  model/           the saved model (see linjax/saved_model.py)
  curves.png, confusion_matrix.png, templates.png
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from typing import NamedTuple

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from experiments import config_check

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'configs', 'default.py')

FLAGS = flags.FLAGS


def _override_error(error: BaseException, argv) -> str:
  """One line for an unknown ``--config.x.y`` key (ml_collections raises
  AttributeError/KeyError with a "Did you mean" hint)."""
  text = str(error)
  key = re.search(r"'([A-Za-z0-9_]+)\\?'", text)
  hint = re.search(r'Did you mean \\?"([A-Za-z0-9_]+)', text)
  culprits = [a.split('=')[0] for a in argv if a.startswith('--config.')
              and key and key.group(1) in a.split('=')[0].split('.')]
  where = culprits[0] if culprits else 'a --config.* override'
  return (f'{where}: no such config key' +
          (f' (did you mean {hint.group(1)!r}?)' if hint else ''))


def define_config_flag(help_text: str) -> None:
  """``--config`` (default: configs/default.py) with ``--config.x.y`` overrides.

  ml_collections reads the overrides from sys.argv while defining the flag
  when the default config is used; an unknown key then exits with one line.
  """
  try:
    config_flags.DEFINE_config_file('config', DEFAULT_CONFIG, help_text,
                                    lock_config=True)
  except (AttributeError, KeyError) as e:
    sys.exit(f'error: {_override_error(e, sys.argv)}')


def parse_flags(argv):
  """Flag parser for `app.run`: bad flags end in one line, not a traceback."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'error: {config_check.one_line(e)}')
  except (AttributeError, KeyError) as e:
    sys.exit(f'error: {_override_error(e, argv)}')


def define_flags() -> None:
  """--config and --workdir; defined only when run as a program, so that
  other runners can import this module's functions without flag clashes."""
  define_config_flag('Training configuration file (a python file with '
                     'get_config()); override keys with '
                     '--config.section.key=value.')
  flags.DEFINE_string('workdir', None, 'Directory to write results, the '
                      'saved model and plots into (created if needed).')


class Splits(NamedTuple):
  """Texts and int32 labels of each split, and the label map.

  ``val_*`` are empty lists/arrays when ``data.val_fraction`` is 0, and
  ``test_*`` when ``data.test_fraction`` is 0 and there is no ``data.test``.
  """

  train_texts: list
  train_y: np.ndarray
  val_texts: list
  val_y: np.ndarray
  test_texts: list
  test_y: np.ndarray
  label_map: object
  source: str


def load_splits(config) -> Splits:
  """Reads the data named by ``config.data`` and splits it (stratified).

  Raises:
    DataError: for unreadable files, bad lines, fewer than two classes, or a
      test label that training never saw.
  """
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  dc, seed = config.data, int(config.train.seed)
  if dc.train:
    corpus = data.read_corpus(dc.train, dc.format, dc.text_column,
                              dc.label_column, dc.lenient, dc.max_per_class,
                              seed)
    source = dc.train
  else:
    from linjax.data import demo  # pylint: disable=g-import-not-at-top
    corpus = demo.demo_corpus(max_per_class=dc.max_per_class or None,
                              seed=seed)
    source = 'demo corpus'
  if not corpus.texts:
    raise data.DataError('no documents.', path=source)
  label_map = data.LabelMap.fit(corpus.labels)
  if label_map.num_classes < 2:
    raise data.DataError(f'only one class ({label_map.names[0]!r}); a '
                         f'classifier needs at least two.', path=source)
  y = label_map.encode(corpus.labels, corpus.sources)
  texts = corpus.texts
  if dc.test:
    test = data.read_corpus(dc.test, dc.format, dc.text_column,
                            dc.label_column, dc.lenient)
    test_texts = test.texts
    test_y = label_map.encode(test.labels, test.sources)
    train_idx = np.arange(len(texts))
  else:
    train_idx, test_idx = data.stratified_split(y, dc.test_fraction, seed)
    test_texts = [texts[i] for i in test_idx]
    test_y = y[test_idx]
  keep, val = data.stratified_split(y[train_idx], dc.val_fraction, seed + 1)
  return Splits(
      train_texts=[texts[i] for i in train_idx[keep]], train_y=y[train_idx[keep]],
      val_texts=[texts[i] for i in train_idx[val]], val_y=y[train_idx[val]],
      test_texts=test_texts, test_y=np.asarray(test_y, np.int32),
      label_map=label_map, source=source)


def start_precompile(options: config_check.RunOptions, texts,
                     num_classes: int, sample: int = 16):
  """Starts compiling the training program before featurisation.

  Only in hashing mode (F = ``features.buckets`` is known now; a vocabulary's
  size is not). `fit` raises the token budget to the longest document's
  number of features; that count is estimated by featurising the ``sample``
  longest texts (by characters), so that the program compiled in the
  background is the one `fit` needs. A wrong guess costs a normal compile.

  Args:
    options: the run's options.
    texts: the training texts (a list of str).
    num_classes: C.
    sample: texts featurised for the estimate.

  Returns:
    `linjax.engine.training.precompile`'s future, or None in vocabulary
    mode.
  """
  if options.features.buckets <= 0 or not texts:
    return None
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
  longest = np.argsort(lengths)[-sample:]
  # Count every feature: min_df would drop most of a 16-text sample's.
  counting = dataclasses.replace(options.features, weighting='tf',
                                 normalize='none', min_df=1)
  x = Featurizer.from_options(counting).fit_transform(
      [texts[i] for i in longest])
  return training.precompile(options.features.buckets, num_classes,
                             optimizer=options.optimizer,
                             training=options.training,
                             max_doc_features=int(x.row_lengths().max()))


def quick_gradcheck(x, y, num_classes: int, l2: float, num_docs: int = 32,
                    max_features: int = 2000, seed: int = 0,
                    table_rows: int = 0):
  """Three-way gradient check on a few documents and only their features.

  Takes up to ``num_docs`` documents (fewer if they use more than
  ``max_features`` distinct features), renumbers their features 0..K-1 and
  runs `linjax.check_grad` at small random parameters, so the finite
  differences cost O(K C) loss evaluations, not O(F C).

  Args:
    x: CsrFeatures of the training split.
    y: int [N] labels.
    num_classes: C.
    l2: the objective's L2 strength.
    num_docs: documents used at most.
    max_features: distinct features used at most.
    seed: PRNG seed of the parameters.
    table_rows: rows of the lecture's per-coordinate slope table (0: none).

  Returns:
    A `linjax.GradCheckReport`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import linjax  # pylint: disable=g-import-not-at-top
  from linjax.text.csr import CsrFeatures  # pylint: disable=g-import-not-at-top
  n = min(num_docs, x.num_docs)
  while n > 1 and np.unique(x.ids[:x.indptr[n]]).shape[0] > max_features:
    n //= 2
  sub = x.take(np.arange(n))
  used, local = np.unique(sub.ids, return_inverse=True)
  sub = CsrFeatures(sub.indptr, local.astype(np.int32), sub.weights,
                    max(1, used.shape[0]))
  ids, weights = sub.to_padded()
  params = linjax.init_params(jax.random.PRNGKey(seed), sub.num_features,
                              num_classes, scale=0.1)
  return linjax.check_grad(
      params, linjax.SparseFeatures(jnp.asarray(ids), jnp.asarray(weights)),
      jnp.asarray(y[:n]), l2=l2, table_rows=table_rows)


def _progress(epoch: int, total: int, entry: dict) -> None:
  """A one-line progress bar on a terminal only."""
  if not sys.stderr.isatty():
    return
  width = 30
  done = int(width * epoch / max(total, 1))
  sys.stderr.write(f'\r[{"#" * done}{"." * (width - done)}] epoch {epoch}/'
                   f'{total} loss {entry.get("train_loss", float("nan")):.4f}')
  if epoch >= total:
    sys.stderr.write('\n')
  sys.stderr.flush()


def _fmt(value, spec='.4f'):
  return 'n/a' if value is None else format(value, spec)


def _write_plots(workdir, history, report, top, label_names) -> list:
  try:
    from linjax.analysis import plots  # pylint: disable=g-import-not-at-top
    written = [plots.training_curves(history,
                                     os.path.join(workdir, 'curves.png'))]
    if report is not None:
      written.append(plots.confusion_matrix(
          report['confusion_matrix'], label_names,
          os.path.join(workdir, 'confusion_matrix.png')))
    written.append(plots.templates(top, os.path.join(workdir,
                                                     'templates.png')))
    return [str(p) for p in written]
  except ImportError as e:  # matplotlib missing: the run is still useful.
    logging.warning('plots skipped: %s', e)
    return []


def train_and_evaluate(config, workdir: str) -> dict:
  """Runs one experiment and writes its outputs into ``workdir``.

  Args:
    config: a ConfigDict with the keys of experiments/configs/default.py.
    workdir: output directory (created if needed).

  Returns:
    The results dict also written to ``workdir/results.json``.

  Raises:
    ConfigError: a bad config value (before any work).
    DataError: bad input data.
    TrainingDiverged: the loss became non-finite.
  """
  options = config_check.validate(config)
  # Heavy imports after validation, so a bad flag fails at once.
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.analysis import interpret  # pylint: disable=g-import-not-at-top
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from linjax.engine import chunk_program  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top

  if config.train.compile_cache:
    chunk_program.enable_compile_cache(
        os.path.expanduser(config.train.compile_cache))
  os.makedirs(workdir, exist_ok=True)
  start = time.perf_counter()
  logging.info('loading data (%s)', config.data.train or 'demo corpus')
  splits = load_splits(config)
  load_seconds = time.perf_counter() - start
  names = splits.label_map.names
  logging.info('%d train, %d validation, %d test documents in %d classes '
               '(%.2f s)', len(splits.train_texts), len(splits.val_texts),
               len(splits.test_texts), len(names), load_seconds)

  # F and C are known: compile the training program while featurising.
  start_precompile(options, splits.train_texts, len(names))
  start = time.perf_counter()
  featurizer = Featurizer.from_options(options.features)
  train_x = featurizer.fit_transform(splits.train_texts)
  val_x = featurizer.transform(splits.val_texts) if splits.val_texts else None
  test_x = (featurizer.transform(splits.test_texts) if splits.test_texts
            else None)
  featurize_seconds = time.perf_counter() - start
  logging.info('featurised: F=%d features, %d non-zeros in train (%.2f s)',
               featurizer.num_features, train_x.nnz, featurize_seconds)

  gradcheck = None
  if config.train.gradcheck:
    report = quick_gradcheck(train_x, splits.train_y, len(names),
                             float(options.training.l2),
                             seed=options.training.seed)
    logging.info('%s', report.format())
    gradcheck = dict(passed=report.passed, num_params=report.num_params,
                     max_rel_error=report.max_rel_error,
                     seconds=report.seconds)

  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  epochs = options.training.epochs
  with open(metrics_path, 'w', encoding='utf-8') as log_file:

    def callback(entry: dict) -> None:
      log_file.write(json.dumps(saved_model.jsonable(entry)) + '\n')
      log_file.flush()
      logging.info('epoch %d/%d: train loss %s, val loss %s, val accuracy %s, '
                   '%.0f tokens/s', entry['epoch'], epochs,
                   _fmt(entry.get('train_loss')), _fmt(entry.get('val_loss')),
                   _fmt(entry.get('val_accuracy')),
                   entry.get('tokens_per_s') or 0.0)
      _progress(entry['epoch'], epochs, entry)

    logging.info('training: %s, lr %g, %s schedule, %d epochs',
                 options.optimizer.name, options.optimizer.learning_rate,
                 options.optimizer.schedule, epochs)
    checkpoint_dir = (os.path.join(os.path.abspath(workdir), 'checkpoints')
                      if options.training.checkpoint_every else None)
    try:
      fit = training.fit(train_x, splits.train_y, len(names),
                         optimizer=options.optimizer,
                         training=options.training, val_x=val_x,
                         val_y=splits.val_y if val_x is not None else None,
                         callback=callback, checkpoint_dir=checkpoint_dir)
    except checkpoint.CheckpointError as e:
      raise checkpoint.CheckpointError(
          f'{e} Use a new --workdir, delete {checkpoint_dir}, or set '
          f'--config.train.checkpoint_every=0.') from None
  # The full history, including epochs restored from a checkpoint.
  with open(metrics_path, 'w', encoding='utf-8') as log_file:
    for entry in fit.history:
      log_file.write(json.dumps(saved_model.jsonable(entry)) + '\n')

  results = dict(
      num_classes=len(names), num_features=featurizer.num_features,
      num_train=len(splits.train_texts), num_val=len(splits.val_texts),
      num_test=len(splits.test_texts), labels=list(names),
      epochs_run=fit.epochs_run, best_epoch=fit.best_epoch, update=fit.update,
      load_seconds=load_seconds, featurize_seconds=featurize_seconds,
      compile_seconds=fit.compile_seconds, train_seconds=fit.train_seconds,
      pack_seconds=fit.pack_seconds,
      gradcheck=gradcheck)
  train_eval = scoring.evaluate(fit.params, train_x, splits.train_y)
  results['train_accuracy'] = float(train_eval['accuracy'])
  results['train_loss'] = float(train_eval['loss'])
  results['val_accuracy'] = results['val_loss'] = None
  if val_x is not None:
    val_eval = scoring.evaluate(fit.params, val_x, splits.val_y)
    results['val_accuracy'] = float(val_eval['accuracy'])
    results['val_loss'] = float(val_eval['loss'])
  report = None
  if test_x is not None:
    proba = scoring.predict_proba(fit.params, test_x)
    report = metrics.classification_report(splits.test_y, proba, names)
  results.update(
      test_accuracy=report and report['accuracy'],
      test_macro_f1=report and report['macro_f1'],
      test_log_loss=report and report['log_loss'],
      test_ece=report and report['ece'], test_report=report)
  results['config'] = config.to_dict()
  results = saved_model.jsonable(results)

  top = interpret.top_features(fit.params, featurizer, names, k=10)
  summary = {k: results[k] for k in (
      'test_accuracy', 'test_macro_f1', 'val_accuracy', 'train_seconds',
      'num_classes', 'num_features', 'epochs_run')}
  saved_model.save(os.path.join(workdir, 'model'), fit.params, featurizer,
                   splits.label_map, config, extra=summary)
  results['plots'] = _write_plots(workdir, fit.history, report, top, names)
  with open(os.path.join(workdir, 'results.json'), 'w',
            encoding='utf-8') as f:
    json.dump(results, f, indent=1)

  print(f'test accuracy {_fmt(results["test_accuracy"])}  macro-F1 '
        f'{_fmt(results["test_macro_f1"])}  val accuracy '
        f'{_fmt(results["val_accuracy"])}  ({results["epochs_run"]} epochs, '
        f'train {results["train_seconds"]:.2f} s, featurise '
        f'{featurize_seconds:.2f} s)')
  print('top features per class:')
  print(interpret.format_top_features(top, k=5))
  print(f'wrote {workdir}/results.json and {workdir}/model')
  return results


def main(argv):
  with config_check.runner_main(argv, workdir=FLAGS.workdir):
    train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_flags)
