"""The persistent compile cache: where 'auto' points, turning it off, and a
folder that cannot be used (linjax/engine/compile_cache.py)."""

import logging
import os

import jax
import pytest

from linjax.engine import chunk_program
from linjax.engine import compile_cache


@pytest.fixture(autouse=True)
def _cache_off_after():
  yield
  compile_cache.disable()


def test_auto_follows_xdg_then_home():
  assert compile_cache.resolve('auto', {'XDG_CACHE_HOME': '/x/cache'}) == (
      '/x/cache/linjax/jax')
  home = os.path.expanduser('~')
  assert compile_cache.resolve('auto', {}) == os.path.join(
      home, '.cache', 'linjax', 'jax')
  assert compile_cache.resolve('auto', {'XDG_CACHE_HOME': ''}) == os.path.join(
      home, '.cache', 'linjax', 'jax')


@pytest.mark.parametrize('value', ['0', 'off', 'OFF', 'false', 'no', '', ' '])
def test_environment_turns_auto_off(value):
  env = {'XDG_CACHE_HOME': '/x', compile_cache.ENV: value}
  assert compile_cache.resolve('auto', env) is None


def test_environment_names_another_folder_and_explicit_settings_win():
  env = {compile_cache.ENV: '/y/jax-cache', 'XDG_CACHE_HOME': '/x'}
  assert compile_cache.resolve('auto', env) == '/y/jax-cache'
  assert compile_cache.resolve('/z/c', env) == '/z/c'
  assert compile_cache.resolve('', env) is None
  assert compile_cache.resolve('~/c', {}) == os.path.join(
      os.path.expanduser('~'), 'c')


def test_the_test_session_never_uses_the_home_cache():
  # tests/conftest.py: 'auto' is off for the tests and the runners they start.
  assert compile_cache.resolve('auto') is None
  assert compile_cache.enable('auto') is None
  assert jax.config.jax_compilation_cache_dir is None


def test_enable_writes_compiled_programs_into_the_folder(tmp_path):
  folder = tmp_path / 'new' / 'cache'
  assert chunk_program.enable_compile_cache(str(folder)) == str(folder)
  assert jax.config.jax_compilation_cache_dir == str(folder)
  assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.1
  # A program quicker to compile than the threshold is not written. The
  # threshold here is one no compile reaches: at 0.1 s a loaded CI machine
  # took longer for this program and cached it.
  assert compile_cache.enable(str(folder), min_compile_seconds=1e6) == str(
      folder)
  jax.jit(lambda a: a * 3 + 1).lower(jax.numpy.float32(2)).compile()
  assert not [p for p in os.listdir(folder) if not p.startswith('.')]
  assert compile_cache.enable(str(folder), min_compile_seconds=0) == str(
      folder)
  jax.jit(lambda a: a * 5 + 1).lower(jax.numpy.float32(2)).compile()
  assert [p for p in os.listdir(folder) if not p.startswith('.')]


def test_unusable_folder_warns_once_and_stays_off(tmp_path, caplog):
  blocker = tmp_path / 'a_file'
  blocker.write_text('x')
  folder = str(blocker / 'cache')   # a file where a folder should be
  with caplog.at_level(logging.WARNING):
    assert compile_cache.enable(folder) is None
    assert compile_cache.enable(folder) is None
  warnings = [r for r in caplog.records if folder in r.getMessage()]
  assert len(warnings) == 1
  assert 'compiling without it' in warnings[0].getMessage()
  assert jax.config.jax_compilation_cache_dir is None
  # Compiling still works.
  assert float(jax.jit(lambda a: a + 1)(1.0)) == 2.0


def _train(tmp_path, env_changes, name, runner='train', extra=()):
  """Runs experiments.train (or another runner that trains) on a small TSV
  with the default compile_cache."""
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  data = tmp_path / 'train.tsv'
  if not data.exists():
    lines = ['label\ttext'] + [
        f'{"ab"[i % 2]}\t{"good fine" if i % 2 else "bad awful"} text {i}'
        for i in range(60)]
    data.write_text('\n'.join(lines) + '\n')
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=root)
  env.pop(compile_cache.ENV)
  env.update(env_changes)
  return subprocess.run(
      [sys.executable, '-m', f'experiments.{runner}',
       '--config=experiments/configs/default.py',
       f'--config.data.train={data}', '--config.train.epochs=1',
       '--config.train.gradcheck=False', f'--workdir={tmp_path / name}',
       *extra],
      capture_output=True, text=True, cwd=root, env=env, timeout=300)


def test_autotune_uses_the_cache_too(tmp_path):
  proc = _train(tmp_path, {'XDG_CACHE_HOME': str(tmp_path / 'xdg')}, 'tune',
                runner='autotune', extra=('--time_budget=3',))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert os.listdir(tmp_path / 'xdg' / 'linjax' / 'jax')


def test_runner_caches_in_the_xdg_folder_by_default(tmp_path):
  proc = _train(tmp_path, {'XDG_CACHE_HOME': str(tmp_path / 'xdg')}, 'run1')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert os.listdir(tmp_path / 'xdg' / 'linjax' / 'jax')
