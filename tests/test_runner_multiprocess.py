"""`python -m experiments.train` on two processes trains the 1-process model.

Two runner processes join a gloo cluster on 127.0.0.1 (a free port), each
reads its half of one TSV file by bytes, and process 0 writes the run. The
reference is the same command on one process: the splits, the merged
document frequencies (min_df, sublinear TF-IDF) and the global batches make
W equal within float summation order, and the test accuracy equal.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from linjax import saved_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))
from localhost import child_env  # pylint: disable=g-import-not-at-top,wrong-import-position
from localhost import free_port  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_runners import assert_one_line_error  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_runners import COMMON  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_runners import WORDS  # pylint: disable=g-import-not-at-top,wrong-import-position

W_RTOL = 1e-4
# Few buckets and epochs keep the three runs within seconds each; above
# 4096 buckets, so the sparse update runs (the default's path).
# Several processes do not refit on train + validation (linjax/cli/
# refit.py), so neither does the 1-process reference.
CONFIG = ['--config.features.buckets=8192', '--config.train.epochs=3',
          '--config.train.gradcheck=False', '--config.train.patience=2',
          '--config.data.refit=False']


def _write_noisy_tsv(path, n, seed):
  """Three classes; a quarter of the documents take words of another
  class, so the model is not perfect and accuracy can tell runs apart."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  lines = ['label\ttext']
  for i in range(n):
    label = names[rng.integers(3)]
    source = names[rng.integers(3)] if rng.random() < 0.25 else label
    toks = list(rng.choice(WORDS[source], 3)) + list(rng.choice(COMMON, 4))
    rng.shuffle(toks)
    lines.append(f'{label}\t{" ".join(toks)}')
  path.write_text('\n'.join(lines) + '\n')
  return path


def _train(*args):
  return [sys.executable, '-m', 'experiments.train', *map(str, args)]


def _run_two(args, timeout=240):
  """Both processes of a 2-process run: [(returncode, stdout, stderr)]."""
  port = free_port()
  procs = [subprocess.Popen(
      _train(*args, f'--coordinator_address=127.0.0.1:{port}',
             '--num_processes=2', f'--process_id={i}'),
      cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  try:
    outputs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def _model(workdir):
  model = saved_model.load(str(workdir / 'model'))
  return model.params


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  base = tmp_path_factory.mktemp('multiprocess')
  return _write_noisy_tsv(base / 'train.tsv', 400, 3), base


def test_two_runner_processes_train_the_one_process_model(corpus):
  train, base = corpus
  # max_per_class: the cap is drawn over the global corpus, as one process.
  args = CONFIG + [f'--config.data.train={train}',
                   '--config.data.max_per_class=120']
  # The 1-process reference runs meanwhile (much of a run is waiting).
  one = subprocess.Popen(_train(*args, f'--workdir={base / "one"}'), cwd=ROOT,
                         env=child_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
  try:
    (rc0, out0, err0), (rc1, out1, err1) = _run_two(
        args + [f'--workdir={base / "two"}'])
    one_err = one.communicate(timeout=240)[1]
  finally:
    if one.poll() is None:
      one.kill()
      one.wait()
  assert one.returncode == 0, one_err[-3000:]
  assert rc0 == 0, err0[-3000:]
  assert rc1 == 0, err1[-3000:]
  assert 'test accuracy' in out0
  assert out1 == ''                       # only process 0 reports
  assert 'error' not in err1.lower() and 'epoch' not in err1, err1[-2000:]

  want = json.loads((base / 'one' / 'results.json').read_text())
  got = json.loads((base / 'two' / 'results.json').read_text())
  assert (want['num_processes'], want['num_devices']) == (1, 1)
  assert (got['num_processes'], got['num_devices']) == (2, 2)
  for key in ('num_train', 'num_val', 'num_test', 'labels', 'epochs_run',
              'best_epoch', 'test_accuracy'):
    assert got[key] == want[key], key
  assert 0.5 < want['test_accuracy'] < 1.0    # a model worth comparing
  for key in ('test_log_loss', 'val_loss', 'train_loss', 'val_accuracy'):
    assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
  # Validation metrics over both processes' documents, epoch by epoch.
  lines = [[json.loads(line) for line in (base / d / 'metrics.jsonl')
            .read_text().splitlines()] for d in ('one', 'two')]
  assert [r['val_loss'] for r in lines[1]] == pytest.approx(
      [r['val_loss'] for r in lines[0]], rel=1e-4)
  W, b = _model(base / 'one')
  W2, b2 = _model(base / 'two')
  scale = np.abs(W).max()
  assert scale > 0.1
  assert np.abs(W2 - W).max() <= W_RTOL * scale
  assert np.abs(b2 - b).max() <= W_RTOL * max(np.abs(b).max(), 1.0)


def test_two_processes_train_the_one_process_multilabel_model(tmp_path):
  """Multi-label: the union of the processes' tags, the 1-process
  multilabel_split, the threshold tuned on the whole validation split and
  the test metrics over every process's documents."""
  # A third of the documents also take another tag's words: P@1 and the
  # threshold can tell runs apart.
  from test_multilabel_runner import _write_fasttext  # pylint: disable=g-import-not-at-top
  train = _write_fasttext(tmp_path / 'train.txt', 300, 5, noise=0.35)
  test = _write_fasttext(tmp_path / 'test.txt', 90, 6, noise=0.35)
  args = ['--config=experiments/configs/multilabel.py',
          '--config.features.buckets=8192', '--config.train.epochs=3',
          '--config.train.gradcheck=False', f'--config.data.train={train}',
          f'--config.data.test={test}']
  one = subprocess.run(_train(*args, f'--workdir={tmp_path / "one"}'),
                       cwd=ROOT, env=child_env(), capture_output=True,
                       text=True, timeout=240)
  assert one.returncode == 0, one.stderr[-3000:]
  (rc0, out0, err0), (rc1, out1, err1) = _run_two(
      args + [f'--workdir={tmp_path / "two"}'])
  assert rc0 == 0, err0[-3000:]
  assert rc1 == 0, err1[-3000:]
  assert 'micro-F1' in out0 and out1 == ''
  want = json.loads((tmp_path / 'one' / 'results.json').read_text())
  got = json.loads((tmp_path / 'two' / 'results.json').read_text())
  assert got['num_processes'] == 2 and want['num_processes'] == 1
  for key in ('num_train', 'num_val', 'num_test', 'labels', 'epochs_run',
              'threshold', 'test_accuracy', 'test_micro_f1',
              'test_macro_f1', 'test_p_at_5'):
    assert got[key] == want[key], key
  assert 0.5 < want['test_micro_f1'] < 1.0   # a model worth comparing
  for key in ('val_accuracy', 'val_loss', 'train_loss'):
    assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
  W, b = _model(tmp_path / 'one')
  W2, b2 = _model(tmp_path / 'two')
  assert np.abs(W2 - W).max() <= W_RTOL * np.abs(W).max()
  assert np.abs(b2 - b).max() <= W_RTOL * max(np.abs(b).max(), 1.0)


def test_a_bad_line_in_one_part_stops_both_processes(corpus):
  train, base = corpus
  lines = train.read_text().splitlines()
  lines[350] = 'no tab on this line'     # line 351, in process 1's half
  bad = base / 'bad.tsv'
  bad.write_text('\n'.join(lines) + '\n')
  runs = _run_two(CONFIG + ['--config.train.checkpoint_every=0',
                            f'--config.data.train={bad}',
                            f'--workdir={base / "bad"}'], timeout=120)
  for rc, _, err in runs:
    proc = subprocess.CompletedProcess([], rc, '', err)
    assert_one_line_error(proc, f'{bad}:351')
  assert 'process 1 of 2 failed' in runs[0][2].strip().splitlines()[-1]


def test_a_bad_cluster_flag_fails_in_one_line(tmp_path):
  proc = subprocess.run(_train('--num_processes=2', '--process_id=0',
                               f'--workdir={tmp_path / "w"}'),
                        cwd=ROOT, env=child_env(), capture_output=True, text=True,
                        timeout=120)
  assert_one_line_error(proc, '--coordinator_address', '--num_processes')


@pytest.mark.parametrize('flags, overrides, fragment', [
    (('127.0.0.1:1', 2, 2), {}, '--process_id must be below '
     '--num_processes=2'),
    (('127.0.0.1', 2, 0), {}, '--coordinator_address must be host:port'),
    (('127.0.0.1:1', 2, 0), {'features.buckets': 0},
     '--config.features.buckets=0'),
    (('127.0.0.1:1', 2, 0), {'data.format': 'folder'}, 'a folder corpus'),
    (('127.0.0.1:1', 2, 0), {'train.epochs': 0}, '--config.train.epochs'),
])
def test_settings_a_multi_process_run_cannot_honour(flags, overrides,
                                                     fragment):
  """Refused before joining: no process waits for the others."""
  from linjax.cli import multiprocess_run  # pylint: disable=g-import-not-at-top
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  from linjax.core.errors import ConfigError  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  for key, value in overrides.items():
    section, name = key.split('.')
    config[section][name] = value
  with pytest.raises(ConfigError) as error:
    multiprocess_run.join(config, *flags)
  assert fragment in str(error.value)


def test_one_process_joins_nothing():
  from linjax.cli import multiprocess_run  # pylint: disable=g-import-not-at-top
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  group = multiprocess_run.join(default.get_config(), '127.0.0.1:1', 1, 0)
  assert (group.multi, group.is_writer, group.count) == (False, True, 1)


def test_a_glob_of_files_is_the_corpus_they_make_one_after_another(corpus):
  """One process reading ``part-*.tsv`` gets the splits of the file those
  parts make in sorted order (what a multi-process run's parts add up to)."""
  from linjax.cli import run_data  # pylint: disable=g-import-not-at-top
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  train, base = corpus
  header, *lines = train.read_text().splitlines()
  folder = base / 'parts'
  folder.mkdir()
  for i, cut in enumerate(range(0, len(lines), 150)):
    (folder / f'part-{i}.tsv').write_text(
        '\n'.join([header] + lines[cut:cut + 150]) + '\n')
  splits = []
  for path in (train, folder / 'part-*.tsv'):
    config = default.get_config()
    config.data.train = str(path)
    config.data.max_per_class = 120
    splits.append(run_data.load_splits(config))
  one, parts = splits
  assert len(one.train_texts) + len(one.val_texts) + len(
      one.test_texts) == 360                       # 3 classes capped at 120
  for name in ('train', 'val', 'test'):
    assert getattr(parts, name + '_texts') == getattr(one, name + '_texts')
    np.testing.assert_array_equal(getattr(parts, name + '_y'),
                                  getattr(one, name + '_y'))
