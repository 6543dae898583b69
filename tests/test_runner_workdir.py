"""The training runner's workdir: nothing lost, nothing silently replaced,
clean interrupts and resume (issue 13, items 5-8), checkpoint retention."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from linjax.engine import checkpoint
from test_runners import _write_tsv
from test_runners import assert_one_line_error
from test_runners import ROOT
from test_runners import run

# checkpoint_seconds=0: a checkpoint every epoch however short (these tests
# are about checkpoints).
QUICK = ['--config.train.gradcheck=False', '--config.train.epochs=2',
         '--config.train.checkpoint_seconds=0']


def snapshot(folder) -> dict:
  """{relative path: sha256} of every file under ``folder``."""
  out = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return out


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  base = tmp_path_factory.mktemp('workdir')
  return dict(base=base, train=_write_tsv(base / 'train.tsv', 150, 0))


def train(data, workdir, *args, check=True):
  return run('train', f'--config.data.train={data["train"]}',
             f'--workdir={workdir}', *args, check=check)


def test_finished_run_is_refused_and_left_untouched(data, tmp_path):
  workdir = tmp_path / 'run'
  train(data, workdir, *QUICK)
  before = snapshot(workdir)
  assert 'metrics.jsonl' in before and 'model/model.json' in before
  # Another config, and the one item 6 suggested: neither may replace it.
  for extra in (['--config.optimizer.learning_rate=3'],
                ['--config.train.checkpoint_every=0']):
    proc = train(data, workdir, *QUICK, *extra, check=False)
    assert proc.returncode == 1
    assert_one_line_error(proc, f'--workdir={workdir} holds a finished run',
                          '--overwrite')
    assert 'reading' not in proc.stderr      # refused before loading data
    assert snapshot(workdir) == before


def test_overwrite_replaces_the_finished_run(data, tmp_path):
  workdir = tmp_path / 'run'
  train(data, workdir, *QUICK)
  train(data, workdir, '--config.train.gradcheck=False',
        '--config.train.epochs=3', '--overwrite')
  results = json.loads((workdir / 'results.json').read_text())
  assert results['epochs_run'] == 3
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(l)['epoch'] for l in lines] == [1, 2, 3]
  assert not (workdir / 'checkpoints').exists()


def test_refused_checkpoints_truncate_nothing(data, tmp_path):
  """Item 5: the refusal used to empty metrics.jsonl first."""
  workdir = tmp_path / 'run'
  train(data, workdir, *QUICK, '--config.train.remove_checkpoints=False')
  (workdir / 'results.json').unlink()       # now an unfinished run
  before = snapshot(workdir)
  assert (workdir / 'metrics.jsonl').stat().st_size > 0
  proc = train(data, workdir, *QUICK, '--config.optimizer.learning_rate=3',
               check=False)
  assert_one_line_error(proc, 'another config or data set',
                        'Nothing was changed', '--overwrite')
  assert snapshot(workdir) == before
  # A corrupt checkpoint is refused the same way, and changes nothing else.
  npz = workdir / 'checkpoints' / 'ckpt_000002.npz'
  npz.write_bytes(npz.read_bytes()[:100])
  before = snapshot(workdir)
  proc = train(data, workdir, *QUICK, check=False)
  assert_one_line_error(proc, 'ckpt_000002.npz', 'truncated')
  assert snapshot(workdir) == before


def _read_only_mount_works() -> bool:
  try:
    return subprocess.run(['unshare', '-rm', 'sh', '-c',
                           'mount -t tmpfs -o ro tmpfs /mnt'],
                          capture_output=True, timeout=30).returncode == 0
  except (OSError, subprocess.SubprocessError):
    return False


@pytest.mark.parametrize('case', ['file', 'under_file', 'proc', 'read_only'])
def test_unusable_workdir_fails_first_naming_the_flag(data, tmp_path, case):
  """Item 7: each names --workdir and the path, before loading any data."""
  a_file = tmp_path / 'a_file'
  a_file.write_text('precious')
  workdir = {'file': a_file, 'under_file': a_file / 'run',
             'proc': '/proc/linjax-run', 'read_only': tmp_path / 'ro' / 'run'
             }[case]
  args = [f'--config.data.train={data["train"]}', f'--workdir={workdir}']
  if case == 'read_only':
    if not _read_only_mount_works():
      pytest.skip('cannot mount a read-only tmpfs here (needs unshare -rm)')
    (tmp_path / 'ro').mkdir()
    env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
    script = (f'mount -t tmpfs -o ro tmpfs {tmp_path / "ro"} && exec '
              f'{sys.executable} -m experiments.train ' + ' '.join(args))
    proc = subprocess.run(['unshare', '-rm', 'sh', '-c', script],
                          capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
  else:
    proc = run('train', *args, check=False)
  reason = {'file': 'is a file, not a folder',
            'under_file': 'a part of the path is a file',
            'proc': 'cannot create the folder',
            'read_only': 'read-only'}[case]
  assert_one_line_error(proc, f'--workdir={workdir}', reason)
  assert proc.returncode == 1
  assert 'reading' not in proc.stderr
  assert a_file.read_text() == 'precious'


def test_checkpoints_keep_the_last_n_and_go_after_success(data, tmp_path):
  kept = tmp_path / 'kept'
  train(data, kept, '--config.train.gradcheck=False', '--config.train.epochs=4',
        '--config.train.keep_checkpoints=2',
        '--config.train.checkpoint_seconds=0',
        '--config.train.remove_checkpoints=False')
  assert checkpoint.epochs(str(kept / 'checkpoints')) == [3, 4]
  assert sorted(os.listdir(kept / 'checkpoints')) == [
      'ckpt_000003.json', 'ckpt_000003.npz', 'ckpt_000004.json',
      'ckpt_000004.npz']
  default = tmp_path / 'default'
  proc = train(data, default, *QUICK)
  assert not (default / 'checkpoints').exists()
  assert 'removed the checkpoints' in proc.stdout
  proc = train(data, tmp_path / 'w', *QUICK,
               '--config.train.keep_checkpoints=0', check=False)
  assert_one_line_error(proc, '--config.train.keep_checkpoints must be >= 1')


def test_checkpoint_retention_and_leftovers(tmp_path):
  d = str(tmp_path)
  arrays = dict(a=np.arange(3.0))
  with checkpoint.retaining(1):
    for epoch in (1, 2, 3):
      checkpoint.save(d, epoch, arrays, {})
      assert checkpoint.epochs(d) == [epoch]
  for epoch in (4, 5, 6):
    checkpoint.save(d, epoch, arrays, {})
  assert checkpoint.epochs(d) == [5, 6]          # the library default, 2
  # An interrupted save or prune leaves a temporary file and an orphan
  # .npz; the next save removes them, not a newer uncommitted .npz.
  (tmp_path / '.tmp-abc').write_bytes(b'half')
  (tmp_path / 'ckpt_000004.npz').write_bytes(b'orphan')
  (tmp_path / 'ckpt_000009.npz').write_bytes(b'in flight')
  checkpoint.save(d, 7, arrays, {}, keep=2)
  assert sorted(os.listdir(d)) == [
      'ckpt_000006.json', 'ckpt_000006.npz', 'ckpt_000007.json',
      'ckpt_000007.npz', 'ckpt_000009.npz']
  assert checkpoint.remove(d) > 0
  assert not os.path.exists(d)
  with pytest.raises(ValueError, match='keep must be >= 1'):
    with checkpoint.retaining(0):
      pass


def _start(data, workdir, args):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  return subprocess.Popen(
      [sys.executable, '-m', 'experiments.train',
       f'--config.data.train={data["train"]}', f'--workdir={workdir}', *args],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
      env=env)


def _wait_for_epochs(proc, metrics, n: int, timeout: float = 240) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= n:
      return
    time.sleep(0.02)
  raise AssertionError(f'training did not reach epoch {n}: '
                       f'{proc.communicate()[1][-2000:]}')


@pytest.mark.parametrize('signum,code', [(signal.SIGINT, 130),
                                         (signal.SIGTERM, 143)])
def test_interrupt_then_resume_gives_the_uninterrupted_model(
    data, tmp_path, signum, code):
  """Item 8: one line, exit 128 + signal, then the same command resumes."""
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  args = ['--config.train.gradcheck=False', '--config.train.epochs=60',
          '--config.features.buckets=65536',
          '--config.train.checkpoint_seconds=0']
  workdir = tmp_path / 'run'
  proc = _start(data, workdir, args)
  _wait_for_epochs(proc, workdir / 'metrics.jsonl', 2)
  proc.send_signal(signum)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == code, err[-2000:]
  assert 'Traceback' not in err, err[-2000:]
  last = err.strip().splitlines()[-1]
  assert last.startswith('interrupted at epoch '), last
  assert '; rerun the same command to resume' in last, last
  stopped_at = int(last.split()[3].rstrip(';'))
  assert 2 < stopped_at <= 60
  # Every write was finished or abandoned whole: no temporary files, every
  # checkpoint verifies, the log holds whole lines of consecutive epochs.
  leftovers = [n for _, _, names in os.walk(workdir) for n in names
               if n.startswith('.tmp')]
  assert not leftovers
  saved = checkpoint.epochs(str(workdir / 'checkpoints'))
  assert len(saved) == 1 and saved[0] < stopped_at
  checkpoint.load(str(workdir / 'checkpoints'))
  logged = [json.loads(l)['epoch']
            for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert logged == list(range(1, len(logged) + 1))
  assert not (workdir / 'results.json').exists()

  resumed = train(data, workdir, *args)
  assert 'Resuming from' in resumed.stderr
  reference = tmp_path / 'reference'
  train(data, reference, *args)
  a = saved_model.load(workdir / 'model').params
  b = saved_model.load(reference / 'model').params
  np.testing.assert_array_equal(np.asarray(a.W), np.asarray(b.W))
  np.testing.assert_array_equal(np.asarray(a.b), np.asarray(b.b))
  logged = [json.loads(l)['epoch']
            for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert logged == list(range(1, 61))
  shutil.rmtree(reference)


def test_failed_run_removes_only_what_it_added(data, tmp_path):
  """Issue 23: a failed run leaves its workdir as it found it (an existing
  folder keeps its own files; what the run wrote is removed)."""
  workdir = tmp_path / 'mine'
  workdir.mkdir()
  (workdir / 'notes.txt').write_text('keep me')
  proc = train(data, workdir, *QUICK, '--config.optimizer.learning_rate=1e30',
               check=False)
  assert_one_line_error(proc, 'diverged at epoch 1')
  assert sorted(p.name for p in workdir.iterdir()) == ['notes.txt']
  assert (workdir / 'notes.txt').read_text() == 'keep me'
  # A run refused before any work (a finished run there) changes nothing.
  done = tmp_path / 'done'
  train(data, done, *QUICK)
  before = snapshot(done)
  proc = train(data, done, *QUICK, check=False)
  assert_one_line_error(proc, 'holds a finished run')
  assert 'removed' not in proc.stderr.strip().splitlines()[-1]
  assert snapshot(done) == before
