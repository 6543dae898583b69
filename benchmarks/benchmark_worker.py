"""The benchmark's worker side: one system on one corpus, measured in-process.

`run_worker` runs in the child process that benchmarks/benchmark.py starts
per (corpus, system) (``python -m benchmarks.benchmark --worker ...``) and
returns that run's row: the scores, the wall seconds of fit and predict, and
the RSS after imports, after reading the data and at the peak.

Nothing here imports JAX at module level: a peer's worker must not load it
(its peak RSS would count JAX's), so linjax and JAX are imported only on the
linjax path.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from benchmarks import peers
from benchmarks.benchmark_report import LINJAX_SYSTEMS


# Measurement helpers. -------------------------------------------------------


def peak_rss_mb() -> float:
  """Peak resident set size of this process so far, in MiB."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / (2**20 if sys.platform == 'darwin' else 2**10)


def score(y_true: Sequence[str], y_pred: Sequence[str]) -> dict:
  """Accuracy and macro-F1 of string labels (scikit-learn's definitions).

  Macro-F1 averages over every label in y_true or y_pred, with F1 = 0 for a
  label never predicted or never true (sklearn ``zero_division=0``). Written
  here without numpy/JAX so a peer's worker loads nothing extra.

  Args:
    y_true: [N] true labels.
    y_pred: [N] predicted labels.

  Returns:
    dict(accuracy=float, macro_f1=float).
  """
  if len(y_true) != len(y_pred):
    raise ValueError(f'{len(y_true)} labels but {len(y_pred)} predictions')
  labels = sorted(set(y_true) | set(y_pred))
  tp = dict.fromkeys(labels, 0)
  n_true = dict.fromkeys(labels, 0)
  n_pred = dict.fromkeys(labels, 0)
  for t, p in zip(y_true, y_pred):
    n_true[t] += 1
    n_pred[p] += 1
    tp[t] += t == p
  f1 = [2 * tp[c] / (n_true[c] + n_pred[c]) if n_true[c] + n_pred[c] else 0.0
        for c in labels]
  return dict(accuracy=sum(tp.values()) / max(len(y_true), 1),
              macro_f1=sum(f1) / max(len(f1), 1))


def machine_info() -> dict:
  """Platform, CPUs, memory, Python and the JAX version (no JAX import)."""
  try:
    cpus_usable = len(os.sched_getaffinity(0))
  except AttributeError:
    cpus_usable = os.cpu_count()
  mem_gb = None
  try:
    with open('/proc/meminfo', encoding='utf-8') as f:
      mem_gb = round(int(f.readline().split()[1]) / 2**20, 1)
  except (OSError, ValueError, IndexError):
    pass
  versions = {}
  for package in ('jax', 'jaxlib', 'fasttext-numpy2', 'scikit-learn'):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  try:
    load = round(os.getloadavg()[0], 2)
  except (AttributeError, OSError):
    load = None
  return dict(platform=platform.platform(), processor=platform.machine(),
              cpu_count=os.cpu_count(), cpus_usable=cpus_usable,
              memory_gb=mem_gb, load_avg_1m=load,
              python=platform.python_version(),
              versions=versions)


def _limit_threads(threads: int) -> None:
  """Pins this process to ``threads`` CPUs when fewer than it may use."""
  try:
    cpus = sorted(os.sched_getaffinity(0))
  except AttributeError:
    return
  if threads < len(cpus):
    os.sched_setaffinity(0, cpus[:threads])


# Workers. -------------------------------------------------------------------


class LinjaxOptions(NamedTuple):
  """The benchmark flags a linjax worker needs (benchmarks/benchmark.py)."""
  compile_cache: str  # --linjax_compile_cache ('': compile cold).
  sweep_learning_rates: Sequence[str]  # --sweep_learning_rates
  sweep_l2s: Sequence[str]  # --sweep_l2s


def _replicate(corpus: peers.Corpus, scale: int) -> peers.Corpus:
  return peers.Corpus(list(corpus.texts) * scale, list(corpus.labels) * scale)


def jax_info() -> dict:
  """The JAX version, backend and devices (imports JAX: linjax workers only)."""
  import jax  # pylint: disable=g-import-not-at-top
  devices = jax.devices()
  return dict(jax_version=jax.__version__, jax_backend=jax.default_backend(),
              device_kind=devices[0].device_kind, device_count=len(devices))


def _linjax_config(corpus_dir: Path, compile_cache: str):
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.data.train = str(corpus_dir / 'train.tsv')
  config.data.test = str(corpus_dir / 'test.tsv')
  config.train.compile_cache = compile_cache
  return config


def _read(config, path: str) -> peers.Corpus:
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  ds = data.read_corpus(path, format=config.data.format,
                        text_column=config.data.text_column,
                        label_column=config.data.label_column,
                        lenient=config.data.lenient)
  return peers.Corpus(list(ds.texts), list(ds.labels))


def _choose_by_sweep(config, tr: peers.Corpus, row: dict,
                     options: LinjaxOptions) -> None:
  """Sets config's lr and l2 by `hyper_sweep.sweep` on a validation split.

  The validation split is carved from train (stratified,
  ``config.data.val_fraction``, seed ``config.train.seed``); the featurizer is
  fitted on the rest. Test is never seen. The caller refits on all of train.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from linjax.cli import config_check  # pylint: disable=g-import-not-at-top
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.engine import hyper_sweep  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  run = config_check.to_options(config)
  keep, held = data.stratified_split(np.asarray(tr.labels),
                                     config.data.val_fraction,
                                     config.train.seed)
  featurizer = Featurizer.from_options(run.features)
  x = featurizer.fit_transform([tr.texts[i] for i in keep])
  val_x = featurizer.transform([tr.texts[i] for i in held])
  label_map = data.LabelMap.fit(tr.labels)
  y = label_map.encode(tr.labels)
  result = hyper_sweep.sweep(
      x, y[keep], label_map.num_classes,
      learning_rates=[float(v) for v in options.sweep_learning_rates],
      l2s=[float(v) for v in options.sweep_l2s], val_x=val_x, val_y=y[held],
      optimizer=run.optimizer, training=run.training)
  config.optimizer.learning_rate = float(result.best_lr)
  config.train.l2 = float(result.best_l2)
  grid = [{k: (None if isinstance(v, float) and v != v else v)
           for k, v in g.items()} for g in result.grid]  # NaN -> null.
  row['sweep'] = dict(best_lr=result.best_lr, best_l2=result.best_l2,
                      grid=grid, n_val=int(held.shape[0]),
                      sweep_s=round(time.perf_counter() - t0, 3))


def _run_linjax(corpus_dir: Path, system: str, scale: int, row: dict,
                options: LinjaxOptions) -> tuple[list, list]:
  """Featurise, fit and predict with linjax; fills row; returns (pred, true)."""
  t0 = time.perf_counter()
  import jax  # pylint: disable=g-import-not-at-top,unused-import
  from linjax.cli import config_check  # pylint: disable=g-import-not-at-top
  from linjax.cli import train as train_runner  # pylint: disable=g-import-not-at-top
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.engine import chunk_program  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  row['import_s'] = round(time.perf_counter() - t0, 3)
  row['import_rss_mb'] = round(peak_rss_mb(), 1)
  row.update(jax_info())
  config = _linjax_config(corpus_dir, options.compile_cache)
  cache = os.path.expanduser(config.train.compile_cache)
  row['compile_cache'] = ('off' if not cache else 'warm' if os.path.isdir(cache)
                          and os.listdir(cache) else 'cold')
  if cache:
    chunk_program.enable_compile_cache(cache)
  tr = _replicate(_read(config, config.data.train), scale)
  te = _read(config, config.data.test)
  row['data_rss_mb'] = round(peak_rss_mb(), 1)
  _describe_data(row, tr, te)

  t_fit = time.perf_counter()
  if system == 'linjax_sweep':
    _choose_by_sweep(config, tr, row, options)
  run = config_check.to_options(config)  # the library's options
  label_map = data.LabelMap.fit(tr.labels)
  # Compiles fit's program in a thread while the host featurises.
  train_runner.start_precompile(run, tr.texts, label_map.num_classes)
  t0 = time.perf_counter()
  featurizer = Featurizer.from_options(run.features)
  x = featurizer.fit_transform(tr.texts)
  y = label_map.encode(tr.labels)
  featurize_s = time.perf_counter() - t0
  result = training.fit(x, y, label_map.num_classes, optimizer=run.optimizer,
                        training=run.training)
  row['fit_s'] = round(time.perf_counter() - t_fit, 3)

  t0 = time.perf_counter()
  z = scoring.predict_logits(result.params, featurizer.transform(te.texts))
  predictions = label_map.decode(z.argmax(-1))
  row['predict_s'] = round(time.perf_counter() - t0, 3)
  row['phases'] = dict(
      featurize_s=round(featurize_s, 3),
      pack_s=round(getattr(result, 'pack_seconds', 0.0), 3),
      compile_s=round(result.compile_seconds, 3),  # fit's wait for it
      train_s=round(result.train_seconds, 3),
      epochs_run=result.epochs_run, update=result.update,
      token_budget=result.token_budget,
      steps_per_epoch=result.steps,
      num_features=int(x.num_features), nnz=int(x.nnz))
  row['config'] = dict(
      learning_rate=float(run.optimizer.learning_rate),
      l2=float(run.training.l2), epochs=int(run.training.epochs),
      max_steps=int(run.training.max_steps),
      docs_per_step=int(run.training.docs_per_step),
      optimizer=run.optimizer.name, schedule=run.optimizer.schedule,
      ngrams=int(run.features.ngrams), buckets=int(run.features.buckets),
      weighting=run.features.weighting,
      normalize=run.features.normalize)
  return predictions, te.labels


RUNNER_SYSTEM = 'linjax_runner'


def replicate_file(path: Path, scale: int, folder: str = '/tmp') -> str:
  """A temporary TSV in ``folder``: ``path``'s header, then its body
  ``scale`` times (streamed: nothing is held in memory)."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  fd, out = tempfile.mkstemp(prefix=f'linjax-x{scale}-', suffix='.tsv',
                             dir=folder)
  with open(path, 'rb') as src, os.fdopen(fd, 'wb') as dst:
    header = src.readline()
    dst.write(header)
    for _ in range(scale):
      src.seek(len(header))
      shutil.copyfileobj(src, dst, 1 << 22)
  return out


def _run_linjax_runner(corpus_dir: Path, scale: int, row: dict,
                       options: LinjaxOptions) -> tuple[list, list]:
  """The train runner (`experiments.train.train_and_evaluate`, default
  config) on train.tsv replicated ``scale`` times in a file under /tmp: the
  whole run, reading and saving included, in memory or out of core as the
  runner decides (``phases.streamed``). ``fit_s`` is the run's wall time."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top,unused-import
  from linjax.cli import train as train_runner  # pylint: disable=g-import-not-at-top
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  row['import_rss_mb'] = round(peak_rss_mb(), 1)
  row.update(jax_info())
  config = _linjax_config(corpus_dir, options.compile_cache)
  one = _read(config, config.data.train)
  te = _read(config, config.data.test)
  _describe_data(row, _replicate(one, 1), te)
  row.update(n_train=row['n_train'] * scale,
             train_tokens=row['train_tokens'] * scale)
  del one
  path = replicate_file(corpus_dir / 'train.tsv', scale)
  workdir = tempfile.mkdtemp(prefix='linjax-bench-run-', dir='/tmp')
  try:
    config.data.train = path
    row['data_rss_mb'] = round(peak_rss_mb(), 1)
    t0 = time.perf_counter()
    results = train_runner.train_and_evaluate(config, workdir)
    row['fit_s'] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    predictions = saved_model.load(os.path.join(workdir, 'model')).predict(
        te.texts)
    row['predict_s'] = round(time.perf_counter() - t0, 3)
  finally:
    os.remove(path)
    shutil.rmtree(workdir, ignore_errors=True)
  row['phases'] = dict(
      streamed=bool(results.get('streamed')),
      load_s=round(results['load_seconds'], 3),
      featurize_s=round(results['featurize_seconds'], 3),
      pack_s=round(results['pack_seconds'], 3),
      compile_s=round(results['compile_seconds'], 3),
      train_s=round(results['train_seconds'], 3),
      epochs_run=results['epochs_run'])
  return list(predictions), te.labels


def _run_peer(corpus_dir: Path, system: str, scale: int, threads: int,
              row: dict) -> tuple[list, list]:
  """Runs a peer as the reference script does; fills row."""
  missing = peers.missing_package(system)
  if missing:
    raise ImportError(f'{system} needs the package {missing} '
                      '(pip install -e ".[bench]")')
  t0 = time.perf_counter()
  peers.import_peer(system)
  row['import_s'] = round(time.perf_counter() - t0, 3)
  row['import_rss_mb'] = round(peak_rss_mb(), 1)
  tr = _replicate(peers.read_tsv(str(corpus_dir / 'train.tsv')), scale)
  te = peers.read_tsv(str(corpus_dir / 'test.tsv'))
  row['data_rss_mb'] = round(peak_rss_mb(), 1)
  _describe_data(row, tr, te)
  result = peers.PEERS[system](tr, te, threads)
  row['fit_s'] = round(result.fit_s, 3)
  if result.fit_raw_s is not None:
    row['fit_raw_s'] = round(result.fit_raw_s, 3)
  row['predict_s'] = round(result.predict_s, 3)
  return result.predictions, te.labels


def folder_mb(path: str) -> float:
  """The size of the files under ``path``, in MiB."""
  total = 0
  for root, _, files in os.walk(path):
    total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
  return round(total / 2**20, 2)


def _describe_data(row: dict, tr: peers.Corpus, te: peers.Corpus) -> None:
  row.update(n_train=len(tr.texts), n_test=len(te.texts),
             n_classes=len(set(tr.labels)),
             train_tokens=peers.count_tokens(tr.texts))


def run_worker(corpus_dir: Path, system: str, threads: int, scale: int,
               with_predictions: bool, options: LinjaxOptions,
               runner_args: Sequence[str] = ()) -> dict:
  """Runs one system on one corpus in this process; returns its row.

  Args:
    corpus_dir: the corpus folder (train.tsv, test.tsv).
    system: one of benchmark.SYSTEMS, 'linjax_sweep' or 'linjax_runner'.
    threads: the CPUs this process may use.
    scale: how many times the training split is replicated.
    with_predictions: put the [n_test] test predictions in the row.
    options: the linjax systems' settings (peers ignore them).
    runner_args: ``linjax_cli``'s extra flags (config overrides).
  """
  row: dict[str, Any] = dict(corpus=corpus_dir.name, system=system,
                             scale=scale, threads=threads)
  _limit_threads(threads)   # inherited by the command-line systems' children
  from benchmarks import cli_systems  # pylint: disable=g-import-not-at-top
  if system in cli_systems.SYSTEMS:
    return cli_systems.run(corpus_dir, system, threads, scale, row,
                           runner_args)
  row['start_rss_mb'] = round(peak_rss_mb(), 1)
  if system in LINJAX_SYSTEMS:
    predictions, truth = _run_linjax(corpus_dir, system, scale, row, options)
  elif system == RUNNER_SYSTEM:
    predictions, truth = _run_linjax_runner(corpus_dir, scale, row, options)
  else:
    predictions, truth = _run_peer(corpus_dir, system, scale, threads, row)
  row.update({k: round(v, 4) for k, v in score(truth, predictions).items()})
  row['peak_rss_mb'] = round(peak_rss_mb(), 1)
  if with_predictions:
    row['predictions'] = list(predictions)
  return row
