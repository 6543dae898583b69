r"""Benchmark: linjax against fastText and scikit-learn on labelled corpora.

  python -m benchmarks.benchmark --data_dir=DIR [--corpora=a,b] \
      [--systems=linjax,linjax_warm,fasttext,sklearn_sgd,sklearn_lbfgs] \
      [--threads=2] \
      [--out=FILE.jsonl] [--markdown=FILE.md] [--scaling=1,2,4,8] \
      [--linjax_sweep] [--repeat=3]

Every corpus is a folder ``DIR/NAME`` with ``train.tsv`` and ``test.tsv``
(``label<TAB>text`` with a header line). Each (corpus, system) runs in its own
child process (``--worker``; the measuring is benchmarks/benchmark_worker.py),
so that its peak RSS is that system's alone; the child prints one JSON row on
stdout. Rows hold the scores (accuracy, macro-F1
on test), wall seconds of fit (featurisation + training; for linjax also
packing and compilation) and predict (featurising the test texts included),
the RSS after imports (an idle interpreter with the same libraries), after
reading the data, and the peak, plus the machine and the JAX backend.

linjax runs ONE configuration on every corpus: experiments/configs/default.py
with the data paths set, trained on the whole training split. ``linjax``
compiles its training program cold (no persistent cache: a first run);
``linjax_warm`` is the same run in a process whose program is already in
JAX's persistent compilation cache (a temporary folder filled by an untimed
run of the same corpus just before, as a user's second run finds it). With
``--linjax_sweep`` the system ``linjax_sweep`` also picks learning rate and L2
by `linjax.engine.hyper_sweep.sweep` on a stratified validation split of
train (test is never looked at). ``--scaling`` replicates one corpus'
training split k times in memory (test unchanged) and measures fit time and
peak memory of linjax and fastText at each k; the system ``linjax_runner``
(``--scaling=1,8,64 --scaling_systems=linjax_runner``) instead runs the
whole train runner on the split replicated k times in a file under /tmp,
in memory or out of core as the runner decides, and reports that run's
wall time and peak RSS.

The peers (benchmarks/peers.py) are optional: a system whose package is
missing yields a row with an ``error`` field. fastText's rows hold its
``fit_raw_s`` (raw text to model, writing its tokenised input file included)
beside ``fit_s`` (training on that file). The Markdown tables (main,
linjax's phases, targets, scaling) are benchmarks/benchmark_report.py; the
targets of issue 11 (1 featurisation speed, 2 fit time, 3 peak memory, 4
accuracy and macro-F1), judged yes/no per corpus, are
benchmarks/benchmark_targets.py.

``--data_dir`` is required (no default folder, no environment variable).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from benchmarks import benchmark_worker
from benchmarks import cli_systems
from benchmarks import peers
from benchmarks import runner_report
# The Markdown report and the worker's measurements; compare, the tables,
# score and peak_rss_mb stay reachable as benchmark.X.
from benchmarks.benchmark_report import compare  # re-exported
from benchmarks.benchmark_report import main_table  # re-exported
from benchmarks.benchmark_report import report
from benchmarks.benchmark_report import scaling_table  # re-exported
from benchmarks.benchmark_worker import machine_info
from benchmarks.benchmark_worker import peak_rss_mb  # re-exported
from benchmarks.benchmark_worker import run_worker  # re-exported
from benchmarks.benchmark_worker import score  # re-exported

SYSTEMS = ('linjax', 'linjax_warm') + tuple(peers.PEERS) + cli_systems.SYSTEMS
# Without fastText's command line, the default leaves it out (a row per
# corpus would say "missing" where `apt-get install fasttext` was not run).
DEFAULT_SYSTEMS = tuple(s for s in SYSTEMS if s != 'fasttext_cli' or
                        shutil.which(cli_systems.FASTTEXT))
MARKER = 'BENCHMARK_ROW '
REPO = Path(__file__).resolve().parents[1]

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'Folder of corpora, each NAME/train.tsv '
                    'and NAME/test.tsv.')
flags.DEFINE_list('corpora', [], 'Corpora (folder names) to run; empty: all '
                  'in --data_dir.')
flags.DEFINE_list('systems', list(DEFAULT_SYSTEMS), 'Systems to run, of: '
                  + ', '.join(SYSTEMS) + ' (fasttext_cli, linjax_cli, '
                  'jax_floor: process start to exit, benchmarks/'
                  'cli_systems.py).')
flags.DEFINE_list('cli_scales', [], 'Command-line systems at scale: '
                  'CORPUS:K runs fasttext_cli and linjax_cli on CORPUS\'s '
                  'train.tsv repeated K times (issue 20 target 2, e.g. '
                  'healthtweets:8,manpages:4); CORPUS:K:lean runs linjax_cli '
                  'at 1x and K without the gradient check and checkpoints '
                  '(the out-of-core memory check, e.g. healthtweets:64:lean).')
flags.DEFINE_bool('linjax_sweep', False, 'Also run linjax_sweep: lr/l2 chosen '
                  'by linjax.engine.hyper_sweep.sweep on a validation split of '
                  'train.')
flags.DEFINE_list('sweep_learning_rates', ['8', '16', '32', '64'],
                  'linjax_sweep: learning rates tried (one fixed grid for '
                  'every corpus).')
flags.DEFINE_list('sweep_l2s', ['0', '1e-6'], 'linjax_sweep: L2 strengths '
                  'tried.')
flags.DEFINE_string('linjax_compile_cache', '', 'linjax: folder of JAX\'s '
                    'persistent compilation cache (train.compile_cache); '
                    'empty: every linjax fit compiles cold. Rows record '
                    'whether the cache held entries before the run.')
flags.DEFINE_integer('threads', 2, 'Thread/core budget of every system.')
flags.DEFINE_string('out', '', 'JSONL file of rows (one per corpus, system).')
flags.DEFINE_string('markdown', '', 'Markdown file of the tables.')
flags.DEFINE_list('scaling', [], 'Training-set replication factors, e.g. '
                  '1,2,4,8; empty: no scaling run.')
flags.DEFINE_string('scaling_corpus', 'healthtweets', 'Corpus of the scaling '
                    'run.')
flags.DEFINE_list('scaling_systems', ['linjax', 'fasttext'], 'Systems of the '
                  'scaling run.')
flags.DEFINE_integer('repeat', 1, 'Runs per (corpus, system), each in a fresh '
                     'process; the row is the run of median fit_s.')
flags.DEFINE_bool('predictions', False, 'Put each system\'s test predictions '
                  'in its row (for checking the metrics).')
flags.DEFINE_integer('worker_timeout_s', 3600, 'Seconds before a worker is '
                     'killed and its row reports a timeout.')
# Worker mode (internal): one system on one corpus, one JSON row on stdout.
flags.DEFINE_bool('worker', False, 'Internal: run one system in this process.')
flags.DEFINE_string('corpus_dir', '', 'Internal: the worker\'s corpus folder.')
flags.DEFINE_string('system', '', 'Internal: the worker\'s system.')
flags.DEFINE_integer('scale', 1, 'Internal: training split replication.')
flags.DEFINE_list('runner_args', [], 'Internal: linjax_cli\'s extra flags.')
LEAN_ARGS = ('--config.train.gradcheck=False',
             '--config.train.checkpoint_every=0')


# Worker mode: the measuring is benchmarks/benchmark_worker.py. --------------


def _worker_main() -> None:
  try:
    if FLAGS.system == '_probe':
      row = benchmark_worker.jax_info()
    else:
      options = benchmark_worker.LinjaxOptions(
          FLAGS.linjax_compile_cache, FLAGS.sweep_learning_rates,
          FLAGS.sweep_l2s)
      row = run_worker(Path(FLAGS.corpus_dir), FLAGS.system, FLAGS.threads,
                       FLAGS.scale, FLAGS.predictions, options,
                       FLAGS.runner_args)
  except Exception as e:  # pylint: disable=broad-except
    logging.exception('worker failed')
    row = dict(corpus=Path(FLAGS.corpus_dir).name, system=FLAGS.system,
               scale=FLAGS.scale,
               error=f'{type(e).__name__}: {" ".join(str(e).split())}')
  sys.stdout.write(MARKER + json.dumps(row) + '\n')
  sys.stdout.flush()


# The parent: one child per (corpus, system). ---------------------------------


def spawn(corpus_dir: Path | None, system: str, threads: int, scale: int = 1,
          with_predictions: bool = False, timeout_s: float = 3600,
          extra_args: Sequence[str] = ()) -> dict:
  """Runs a worker child process and returns its row (or an error row)."""
  cmd = [sys.executable, '-m', 'benchmarks.benchmark', '--worker',
         f'--system={system}', f'--threads={threads}', f'--scale={scale}',
         f'--corpus_dir={corpus_dir or ""}',
         f'--predictions={with_predictions}', *extra_args]
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(REPO)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
  name = corpus_dir.name if corpus_dir else ''
  base = dict(corpus=name, system=system, scale=scale)
  try:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout_s, check=False)
  except subprocess.TimeoutExpired:
    return dict(base, error=f'timeout after {timeout_s} s')
  rows = [l[len(MARKER):] for l in proc.stdout.splitlines()
          if l.startswith(MARKER)]
  if proc.returncode or not rows:
    tail = [l for l in proc.stderr.splitlines() if l.strip()][-1:]
    return dict(base, error=f'worker exit {proc.returncode}: '
                f'{tail[0] if tail else "no output"}',
                stderr_tail=proc.stderr[-2000:])
  row = json.loads(rows[-1])
  if 'error' in row:
    row['stderr_tail'] = proc.stderr[-2000:]
  return row


def median_run(runs: Sequence[dict]) -> dict:
  """The run of median fit_s (the upper median), with every run's times.

  An error in any run makes the row that error.
  """
  bad = [r for r in runs if 'error' in r]
  if bad:
    return bad[0]
  key = next(k for k in ('fit_s', 'warm_s', 'cli_s', 'wall_s')
             if k in runs[0])
  ordered = sorted(runs, key=lambda r: r[key])
  row = dict(ordered[len(ordered) // 2])
  if len(runs) > 1:
    row.update({'repeat': len(runs), f'{key}_runs': [r[key] for r in runs],
                'peak_rss_mb_runs': [r['peak_rss_mb'] for r in runs]})
    if 'predict_s' in runs[0]:
      row['predict_s_runs'] = [r['predict_s'] for r in runs]
    if 'cold_s' in runs[0]:
      row['cold_s_runs'] = [r['cold_s'] for r in runs]
  return row


def run_benchmark(data_dir: Path, corpora: Sequence[str],
                  systems: Sequence[str], threads: int,
                  scaling: Sequence[int] = (), scaling_corpus: str = '',
                  scaling_systems: Sequence[str] = (),
                  with_predictions: bool = False,
                  timeout_s: float = 3600,
                  extra_args: Sequence[str] = (),
                  repeat: int = 1,
                  cli_scales: Sequence[tuple] = ()) -> list[dict]:
  """All rows: every system on every corpus, then the scaling runs.

  Each (corpus, system[, scale]) runs ``repeat`` times, each in a fresh child;
  its row is the run of median time (`median_run`). The command-line
  systems' rows have ``run`` 'cli' (or 'cli_lean'); ``cli_scales`` are
  (corpus, k, lean) of `--cli_scales`.
  """
  jobs = [(c, s, 1, 'cli' if s in cli_systems.SYSTEMS else 'main')
          for c in corpora for s in systems]
  jobs += [(scaling_corpus, s, k, 'scaling') for k in scaling
           for s in scaling_systems]
  for corpus, k, lean in cli_scales:
    if lean:
      jobs += [(corpus, 'linjax_cli', 1, 'cli_lean'),
               (corpus, 'linjax_cli', k, 'cli_lean')]
    else:
      jobs += [(corpus, s, k, 'cli') for s in ('fasttext_cli', 'linjax_cli')]
  common = dict(date=datetime.datetime.now().astimezone().isoformat(
      timespec='seconds'), machine=machine_info())
  probe = spawn(None, '_probe', threads, timeout_s=timeout_s)
  probe.pop('corpus', None), probe.pop('scale', None), probe.pop('system', None)
  common.update({k: v for k, v in probe.items() if k != 'stderr_tail'})
  logging.info('machine: %s; JAX: %s', common['machine'], probe)
  rows = []
  warm_cache = tempfile.mkdtemp(prefix='linjax-bench-cache-')
  try:
    for i, (corpus, system, scale, kind) in enumerate(jobs, 1):
      rows.append(_job_row(data_dir, corpus, system, scale, kind, threads,
                           with_predictions, timeout_s, extra_args, repeat,
                           warm_cache, f'[{i}/{len(jobs)}]', common))
  finally:
    shutil.rmtree(warm_cache, ignore_errors=True)
  return rows


def _job_row(data_dir, corpus, system, scale, kind, threads, with_predictions,
             timeout_s, extra_args, repeat, warm_cache, tag, common) -> dict:
  """The row of one (corpus, system, scale): `repeat` children, median."""
  logging.info('%s %s / %s%s%s ...', tag, corpus, system,
               f' x{scale}' if scale != 1 else '',
               ' (lean)' if kind == 'cli_lean' else '')
  if kind == 'cli_lean':
    extra_args = [*extra_args, f'--runner_args={",".join(LEAN_ARGS)}']
  peer_missing = system in peers.PEERS and peers.missing_package(system)
  if peer_missing:
    row = dict(corpus=corpus, system=system, scale=scale,
               error=f'package {peer_missing} not installed '
               '(pip install -e ".[bench]")')
  else:
    if system == 'linjax_warm':
      # An untimed run fills the cache; the timed ones find it warm.
      extra_args = [*extra_args, f'--linjax_compile_cache={warm_cache}']
      spawn(data_dir / corpus, system, threads, scale, False, timeout_s,
            extra_args)
    runs = []
    for _ in range(repeat):
      runs.append(spawn(data_dir / corpus, system, threads, scale,
                        with_predictions, timeout_s, extra_args))
      if 'error' in runs[-1]:
        break
    row = median_run(runs)
  row = dict(row, run=kind, **{k: v for k, v in common.items()
                               if k not in row})
  if 'error' in row:
    logging.warning('    %s / %s: %s', corpus, system, row['error'])
  elif system == 'jax_floor':
    logging.info('    %.2f s, peak RSS %.0f MB', row['wall_s'],
                 row['peak_rss_mb'])
  elif system in cli_systems.SYSTEMS:
    logging.info('    accuracy %.4f  macro-F1 %.4f  %s  peak RSS %.0f MB',
                 row['accuracy'], row['macro_f1'],
                 f'{row["cli_s"]:.2f} s' if 'cli_s' in row else
                 f'cold {row["cold_s"]:.2f} s warm {row["warm_s"]:.2f} s',
                 row['peak_rss_mb'])
  else:
    logging.info('    accuracy %.4f  macro-F1 %.4f  fit %.2f s  predict '
                 '%.2f s  peak RSS %.0f MB', row['accuracy'], row['macro_f1'],
                 row['fit_s'], row['predict_s'], row['peak_rss_mb'])
  return row


# Command line. ----------------------------------------------------------------


def _fail(message: str) -> None:
  sys.exit(f'error: {message}')


def _check_flags() -> tuple[Path, list, list, list]:
  """Validates the flags before any work; exits with one line naming one."""
  if not FLAGS.data_dir:
    _fail('--data_dir is required: a folder of corpora (NAME/train.tsv, '
          'NAME/test.tsv).')
  data_dir = Path(FLAGS.data_dir).expanduser().resolve()
  if not data_dir.is_dir():
    _fail(f'--data_dir: no such folder: {FLAGS.data_dir}')
  known = list(SYSTEMS) + ['linjax_sweep', 'linjax_runner']
  cli_scales = []
  for item in FLAGS.cli_scales:
    parts = item.split(':')
    if (len(parts) not in (2, 3) or not parts[1].isdigit() or
        int(parts[1]) < 2 or parts[2:] not in ([], ['lean'])):
      _fail(f'--cli_scales: expected CORPUS:K or CORPUS:K:lean with K >= 2, '
            f'got {item!r}.')
    cli_scales.append((parts[0], int(parts[1]), parts[2:] == ['lean']))
  for flag in ('systems', 'scaling_systems'):
    for s in getattr(FLAGS, flag):
      if s not in known:
        _fail(f'--{flag}: unknown system {s!r}; known: {", ".join(known)}.')
  available = sorted(p.name for p in data_dir.iterdir()
                     if (p / 'train.tsv').is_file()
                     and (p / 'test.tsv').is_file())
  corpora = list(FLAGS.corpora) or available
  for c in corpora:
    if c not in available:
      _fail(f'--corpora: no corpus {c!r} (a folder with train.tsv and '
            f'test.tsv) in {data_dir}; found: {", ".join(available) or "none"}.')
  if not corpora:
    _fail(f'--data_dir: no corpus (a folder with train.tsv and test.tsv) in '
          f'{data_dir}.')
  try:
    scaling = [int(k) for k in FLAGS.scaling]
  except ValueError:
    scaling = [0]
  if any(k < 1 for k in scaling):
    _fail(f'--scaling: expected positive integers like 1,2,4,8, got '
          f'{",".join(FLAGS.scaling)}.')
  for corpus, _, _ in cli_scales:
    if corpus not in available:
      _fail(f'--cli_scales: no corpus {corpus!r} in {data_dir}.')
  if scaling and FLAGS.scaling_corpus not in available:
    _fail(f'--scaling_corpus: no corpus {FLAGS.scaling_corpus!r} in '
          f'{data_dir}.')
  for flag, low in (('sweep_learning_rates', 1e-30), ('sweep_l2s', 0.0)):
    try:
      values = [float(v) for v in getattr(FLAGS, flag)]
    except ValueError:
      values = [-1.0]
    if not values or any(not low <= v < float('inf') for v in values):
      _fail(f'--{flag}: expected a list of {"positive" if low else "non-negative"}'
            f' numbers, got {",".join(getattr(FLAGS, flag))}.')
  if FLAGS.repeat < 1:
    _fail(f'--repeat must be >= 1, got {FLAGS.repeat}.')
  if FLAGS.threads < 1:
    _fail(f'--threads must be >= 1, got {FLAGS.threads}.')
  if FLAGS.worker_timeout_s < 1:
    _fail(f'--worker_timeout_s must be >= 1, got {FLAGS.worker_timeout_s}.')
  if scaling and not FLAGS.scaling_systems:
    _fail('--scaling_systems is empty: name the systems of the --scaling run.')
  cache = os.path.expanduser(FLAGS.linjax_compile_cache)
  if cache and os.path.exists(cache) and not os.path.isdir(cache):
    _fail(f'--linjax_compile_cache must be a folder, not a file: '
          f'{FLAGS.linjax_compile_cache}')
  for flag in ('out', 'markdown'):
    parent = Path(getattr(FLAGS, flag)).expanduser().parent
    if getattr(FLAGS, flag) and not parent.is_dir():
      _fail(f'--{flag}: no such folder: {parent}')
  systems = list(dict.fromkeys(FLAGS.systems))
  if FLAGS.linjax_sweep and 'linjax_sweep' not in systems:
    systems.append('linjax_sweep')
  if not systems:
    _fail('--systems is empty: name at least one of '
          f'{", ".join(known)} (or pass --linjax_sweep).')
  return data_dir, corpora, systems, scaling, cli_scales


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  if FLAGS.worker:
    _worker_main()
    return
  data_dir, corpora, systems, scaling, cli_scales = _check_flags()
  logging.info('benchmark: corpora %s, systems %s, %d threads%s', corpora,
               systems, FLAGS.threads,
               f', scaling {scaling} on {FLAGS.scaling_corpus}'
               if scaling else '')
  rows = run_benchmark(data_dir, corpora, systems, FLAGS.threads, scaling,
                       FLAGS.scaling_corpus, FLAGS.scaling_systems,
                       FLAGS.predictions, FLAGS.worker_timeout_s,
                       [f'--sweep_learning_rates={",".join(FLAGS.sweep_learning_rates)}',
                        f'--sweep_l2s={",".join(FLAGS.sweep_l2s)}',
                        f'--linjax_compile_cache={FLAGS.linjax_compile_cache}'],
                       FLAGS.repeat, cli_scales)
  if FLAGS.out:
    with open(FLAGS.out, 'w', encoding='utf-8') as f:
      for row in rows:
        f.write(json.dumps(row) + '\n')
    logging.info('wrote %d rows to %s', len(rows), FLAGS.out)
  text = report(rows, FLAGS.threads, FLAGS.repeat) + runner_report.report(
      rows)
  if FLAGS.markdown:
    Path(FLAGS.markdown).write_text(text, encoding='utf-8')
    logging.info('wrote %s', FLAGS.markdown)
  print(text)


if __name__ == '__main__':
  app.run(main)
