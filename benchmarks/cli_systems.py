"""The benchmark's command-line systems: what a user times, start to exit.

Each is run as child processes of the worker, timed from the process's
start to its exit, with the peak RSS of the child (``os.wait4``'s
``ru_maxrss``, taken by a small launcher process: see ``timed``), exactly as
``shared/bench/runner_vs_fasttext_cli.sh`` runs them (``/usr/bin/time``):

* ``fasttext_cli``: fastText's command line as Debian packages it
  (``apt-get install fasttext``): a Python process writes the labelled,
  tokenised files (the peers' tokenisation), ``fasttext supervised`` (5
  epochs, lr 0.5, word bigrams, dim 10, 2M buckets, the thread budget) and
  ``fasttext test``. ``cli_s`` is the whole job, the sum of the three;
  ``peak_rss_mb`` the largest of the three. ``fasttext predict`` (not
  timed) gives the predictions for macro-F1.
* ``linjax_cli``: ``python -m experiments.train`` with the default config
  on the corpus's files, twice: ``cold_s`` with a fresh persistent compile
  cache (``XDG_CACHE_HOME`` in a new folder: a user's first run) and
  ``warm_s`` the second run; the test metrics, where the run went (in
  memory or ``streamed``) and the phases of the warm run's results.json
  ``timeline`` (`phases`).
* ``jax_floor``: ``python -c "import jax, jax.numpy as jnp;
  jnp.zeros(1).block_until_ready()"``, JAX's start that every linjax run
  pays (the median wall of three; its peak RSS).

No JAX here: the worker stays small (it does not count: every number is a
child's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from benchmarks import benchmark_worker
from benchmarks import peers

SYSTEMS = ('fasttext_cli', 'linjax_cli', 'jax_floor')
FASTTEXT = 'fasttext'   # the Debian binary, on PATH
FLOOR_CODE = ('import jax, jax.numpy as jnp; '
              'jnp.zeros(1).block_until_ready()')
_PREPARE = r'''
import re, sys
tok = re.compile(r"\w+|[^\w\s]")
for src, dst in ((sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])):
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        next(f)
        for line in f:
            lab, _, txt = line.rstrip("\n").partition("\t")
            g.write("__label__" + lab.replace(" ", "_") + " " + " ".join(tok.findall(txt.lower())) + "\n")
'''


class Timed(dict):
  """One child's wall seconds (``s``), peak RSS (``mb``), exit status and
  output (``out``, ``err``: the tails)."""


# Linux counts the memory a process had at fork into its ru_maxrss, so a
# child forked by a big parent (a pytest worker, a benchmark that loaded a
# corpus) reports the parent's RSS. A ~10 MB launcher does the fork, as
# /usr/bin/time does, and reports the command's wall and peak.
_LAUNCHER = r'''
import os, sys, time
start = time.perf_counter()
try:
    pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
except OSError as e:
    sys.stderr.write("cannot run %s: %s\n" % (sys.argv[2], e))
    raise SystemExit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    f.write("%r %d %d" % (wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)))
'''


def timed(cmd: Sequence[str], env=None, cwd=None, stdout_path=None) -> Timed:
  """Runs ``cmd`` to its end; its wall time (spawn to reaped) and peak RSS.

  Output goes to temporary files (``stdout_path`` keeps stdout there).
  """
  with tempfile.TemporaryDirectory(prefix='linjax-cli-') as tmp:
    out_path = stdout_path or os.path.join(tmp, 'out')
    usage_path = os.path.join(tmp, 'usage')
    with open(out_path, 'wb') as out, open(os.path.join(tmp, 'err'),
                                           'wb') as err:
      launcher = subprocess.run(
          [sys.executable, '-I', '-S', '-c', _LAUNCHER, usage_path,
           *map(str, cmd)], env=env, cwd=cwd, stdout=out, stderr=err,
          check=False)
    with open(os.path.join(tmp, 'err'), 'rb') as f:
      err_text = f.read()[-3000:].decode('utf-8', 'replace')
    with open(out_path, 'rb') as f:
      out_text = f.read()[-3000:].decode('utf-8', 'replace')
    if not os.path.exists(usage_path):   # the command could not start
      return Timed(s=0.0, mb=0.0, rc=launcher.returncode or 127,
                   out=out_text, err=err_text)
    with open(usage_path, encoding='ascii') as f:
      wall, maxrss, rc = f.read().split()
  peak = int(maxrss) / (2**20 if sys.platform == 'darwin' else 2**10)
  return Timed(s=float(wall), mb=peak, rc=int(rc), out=out_text,
               err=err_text)


def _check(t: Timed, what: str) -> Timed:
  if t['rc'] != 0:
    tail = [l for l in t['err'].splitlines() if l.strip()][-1:]
    raise RuntimeError(f'{what} failed (exit {t["rc"]}): '
                       f'{tail[0] if tail else "no output"}')
  return t


def _train_file(corpus_dir: Path, scale: int, tmp: str) -> Path:
  if scale == 1:
    return corpus_dir / 'train.tsv'
  return Path(benchmark_worker.replicate_file(corpus_dir / 'train.tsv',
                                              scale, tmp))


def _labels(path: Path) -> list:
  with open(path, encoding='utf-8') as f:
    next(f)
    return [line.rstrip('\n').partition('\t')[0].replace(' ', '_')
            for line in f]


def run_fasttext_cli(train: Path, test: Path, threads: int, tmp: str,
                     row: dict) -> None:
  """fastText's command-line job (see module docstring); fills ``row``."""
  if shutil.which(FASTTEXT) is None:
    raise RuntimeError('fastText CLI missing: apt-get install fasttext')
  ft_train, ft_test = os.path.join(tmp, 'ft_train.txt'), os.path.join(
      tmp, 'ft_test.txt')
  prep = _check(timed([sys.executable, '-c', _PREPARE, train, test, ft_train,
                       ft_test]), 'preparing the fastText files')
  model = os.path.join(tmp, 'ft')
  fit = _check(timed([FASTTEXT, 'supervised', '-input', ft_train, '-output',
                      model, '-epoch', '5', '-lr', '0.5', '-wordNgrams', '2',
                      '-dim', '10', '-bucket', '2000000', '-thread',
                      str(threads), '-verbose', '0']), 'fasttext supervised')
  test_run = _check(timed([FASTTEXT, 'test', model + '.bin', ft_test]),
                    'fasttext test')
  predicted = os.path.join(tmp, 'predicted.txt')
  _check(timed([FASTTEXT, 'predict', model + '.bin', ft_test],
               stdout_path=predicted), 'fasttext predict')
  with open(predicted, encoding='utf-8') as f:
    predictions = [line.strip()[len('__label__'):] for line in f]
  truth = _labels(test)
  row.update(benchmark_worker.score(truth, predictions))
  p_at_1 = [l.split() for l in test_run['out'].splitlines()
            if l.startswith('P@1')]
  row.update(
      cli_s=prep['s'] + fit['s'] + test_run['s'], prep_s=prep['s'],
      train_s=fit['s'], test_s=test_run['s'],
      peak_rss_mb=max(prep['mb'], fit['mb'], test_run['mb']),
      fasttext_p_at_1=float(p_at_1[0][1]) if p_at_1 else None,
      model_mb=os.path.getsize(model + '.bin') / 2**20)


def phases(results: dict, wall: float) -> dict:
  """The runner's phases in seconds from results.json's ``timeline``.

  process_start: the interpreter, linjax's and JAX's imports, the flags
  (until the run's first phase); imports: the run's own (optax, the
  engine); compile: what training waited for its compiled program
  (``compile_seconds``, the refit's included); train: the fits (and the
  refit) less that wait; gradient_check: its background thread's span, and
  ``gradient_check_wait`` what the run waited for it at the end; save: top
  features and the model; plots_report: PNGs and report.html; exit: the
  wall after the timeline's end (results.json, the summary, the process's
  exit).
  """
  spans = {}
  for p in results.get('timeline') or []:
    spans[p['phase']] = spans.get(p['phase'], 0.0) + p['end_s'] - p['start_s']
  end = max([p['end_s'] for p in results.get('timeline') or []] + [0.0])
  refit = results.get('refit') or {}
  compile_s = (results.get('compile_seconds') or 0.0) + (
      refit.get('compile_seconds') or 0.0)
  fit_s = spans.get('train', 0.0) + spans.get('refit', 0.0)

  def get(*names):
    return round(sum(spans.get(n, 0.0) for n in names), 3)
  return dict(
      process_start_s=get('start'), imports_s=get('imports'),
      read_s=get('read'), trace_s=get('trace'), featurise_s=get('featurise'),
      read_featurise_s=get('read and featurise'),
      compile_s=round(compile_s, 3), train_s=round(fit_s - compile_s, 3),
      refit_s=get('refit'),
      gradient_check_s=get('gradient check (background)'),
      gradient_check_wait_s=get('gradient check wait'),
      evaluate_s=get('evaluate'), save_s=get('top features', 'save'),
      plots_report_s=get('plots', 'report'),
      exit_s=round(max(wall - end, 0.0), 3))


def run_linjax_cli(train: Path, test: Path, tmp: str, row: dict,
                   runner_args: Sequence[str] = ()) -> None:
  """The train runner cold then warm (see module docstring); fills row."""
  repo = Path(__file__).resolve().parents[1]
  env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, 'cache'))
  env.pop('LINJAX_COMPILE_CACHE', None)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(repo)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
  workdir = os.path.join(tmp, 'run')
  cmd = [sys.executable, '-m', 'experiments.train',
         '--config=experiments/configs/default.py', f'--workdir={workdir}',
         f'--config.data.train={train}', f'--config.data.test={test}',
         *runner_args]
  runs = []
  for what in ('cold', 'warm'):
    shutil.rmtree(workdir, ignore_errors=True)
    runs.append(_check(timed(cmd, env=env, cwd=repo), f'the runner ({what})'))
  with open(os.path.join(workdir, 'results.json'), encoding='utf-8') as f:
    results = json.load(f)
  cold, warm = runs
  row.update(
      cold_s=cold['s'], warm_s=warm['s'], cold_peak_rss_mb=cold['mb'],
      peak_rss_mb=warm['mb'], accuracy=results['test_accuracy'],
      macro_f1=results['test_macro_f1'],
      val_accuracy=results['val_accuracy'],
      streamed=bool(results.get('streamed')),
      refit=results.get('refit') is not None,
      featurize_seconds=results['featurize_seconds'],
      epochs_run=results['epochs_run'], runner_args=list(runner_args),
      phases=phases(results, warm['s']),
      model_mb=benchmark_worker.folder_mb(os.path.join(workdir, 'model')))


def run_jax_floor(row: dict, repeat: int = 3) -> None:
  """JAX's start (see module docstring); fills row."""
  runs = [_check(timed([sys.executable, '-c', FLOOR_CODE]), 'the JAX floor')
          for _ in range(repeat)]
  walls = sorted(r['s'] for r in runs)
  row.update(wall_s=walls[len(walls) // 2], wall_s_runs=walls,
             peak_rss_mb=max(r['mb'] for r in runs))


def run(corpus_dir: Path, system: str, threads: int, scale: int,
        row: dict, runner_args: Sequence[str] = ()) -> dict:
  """One command-line system on one corpus (``scale`` copies of its
  training file); fills and returns ``row``."""
  with tempfile.TemporaryDirectory(prefix='linjax-bench-cli-',
                                   dir='/tmp') as tmp:
    test = corpus_dir / 'test.tsv'
    if system == 'jax_floor':
      run_jax_floor(row)
      return row
    train = _train_file(corpus_dir, scale, tmp)
    one = peers.read_tsv(str(corpus_dir / 'train.tsv'))
    row.update(n_train=len(one.texts) * scale,
               train_tokens=peers.count_tokens(one.texts) * scale)
    del one
    if system == 'fasttext_cli':
      run_fasttext_cli(train, test, threads, tmp, row)
    else:
      run_linjax_cli(train, test, tmp, row, runner_args)
  return row
