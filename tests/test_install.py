"""A fresh virtual environment and an empty folder (issue 23, "done when"):
``pip install <clone>`` gives the ``linjax`` command, which trains the demo
with no files and a user's TSV files with no ``--config``; the README's
first command works as written in a clone.

Slow (two pip installs and three training runs, ~2 minutes on 2 cores), and
in CI. Nothing is downloaded: the venv sees this environment's packages
(``--system-site-packages``), pip runs with ``PIP_NO_INDEX=1`` and without
build isolation (``PIP_NO_BUILD_ISOLATION=0``: setuptools and wheel, from
the test extra, build the package).
"""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from test_runners import _write_tsv

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What a clone holds that an install needs (tests and benchmarks are not).
CLONE = ('setup.cfg', 'pyproject.toml', 'README.md', 'linjax', 'experiments')

pytestmark = pytest.mark.slow


def _can_build_offline() -> bool:
  import setuptools  # pylint: disable=import-outside-toplevel
  major, minor = (int(p) for p in setuptools.__version__.split('.')[:2])
  return (major, minor) >= (70, 1) or (
      importlib.util.find_spec('wheel') is not None)


def _sh(command, cwd, env, timeout=600):
  from test_readme import run_group  # pylint: disable=import-outside-toplevel
  proc = run_group(['bash', '-c', command], timeout, cwd=cwd, env=env)
  assert proc.returncode == 0, (command, proc.stdout[-2000:],
                                proc.stderr[-3000:])
  return proc


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
  if not _can_build_offline():
    pytest.fail('building linjax without downloads needs the wheel package '
                '(pip install -e ".[test]" installs it) or setuptools>=70.1')
  base = tmp_path_factory.mktemp('install')
  clone = base / 'clone'
  clone.mkdir()
  ignore = shutil.ignore_patterns('__pycache__', '*.egg-info', 'build')
  for name in CLONE:
    source = ROOT / name
    if source.is_dir():
      shutil.copytree(source, clone / name, ignore=ignore)
    else:
      shutil.copy2(source, clone / name)
  subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages',
                  str(base / 'venv')], check=True, timeout=300)
  bin_dir = base / 'venv' / 'bin'
  env = {k: v for k, v in os.environ.items()
         if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')}
  env.update(PATH=f'{bin_dir}{os.pathsep}{env.get("PATH", "")}',
             VIRTUAL_ENV=str(base / 'venv'), PIP_NO_INDEX='1',
             PIP_NO_BUILD_ISOLATION='0', PIP_DISABLE_PIP_VERSION_CHECK='1',
             JAX_PLATFORMS='cpu', LINJAX_COMPILE_CACHE='0')
  _sh(f'pip install "{clone}"', base, env)       # not editable
  return dict(base=base, clone=clone, env=env, bin=bin_dir)


def test_installed_command_trains_the_demo_from_an_empty_folder(venv):
  empty = venv['base'] / 'empty'
  empty.mkdir()
  where = _sh('python -c "import linjax; print(linjax.__file__)"', empty,
              venv['env']).stdout.strip()
  assert where.startswith(str(venv['base'] / 'venv')), where  # the copy
  assert shutil.which('linjax', path=venv['env']['PATH']) == str(
      venv['bin'] / 'linjax')
  usage = _sh('linjax --help', empty, venv['env']).stdout
  for command in ('train', 'predict', 'evaluate', 'autotune', 'convert',
                  'explain'):
    assert re.search(rf'^  {command} ', usage, re.M), command
  _sh('linjax train --workdir=run1', empty, venv['env'])
  results = json.loads((empty / 'run1' / 'results.json').read_text())
  assert results['num_classes'] > 2 and results['test_accuracy'] > 0.3
  assert (empty / 'run1' / 'model' / 'model.json').is_file()


def test_installed_command_trains_files_without_config(venv):
  folder = venv['base'] / 'mine'
  folder.mkdir()
  _write_tsv(folder / 'train.tsv', 150, 0)
  _write_tsv(folder / 'test.tsv', 45, 1)
  _sh('linjax train --config.data.train=train.tsv '
      '--config.data.test=test.tsv --config.train.epochs=2 --workdir=run',
      folder, venv['env'])
  results = json.loads((folder / 'run' / 'results.json').read_text())
  assert results['num_classes'] == 3 and results['num_test'] == 45
  proc = _sh('echo "doctor drug patient" | linjax predict '
             '--model=run/model --input=-', folder, venv['env'])
  assert proc.returncode == 0 and proc.stdout.startswith('health\t')


def test_readme_first_command_in_a_clone(venv):
  """The README's first command as written, in the clone (its --workdir
  moved from /tmp/ into the test's folder)."""
  readme = (ROOT / 'README.md').read_text(encoding='utf-8')
  first = re.findall(r'```bash\n(.*?)```', readme, flags=re.S)[0].strip()
  assert first.startswith('pip install')
  out = venv['base'] / 'readme'
  _sh(first.replace('/tmp/', f'{out}/'), venv['clone'], venv['env'])
  assert list(out.glob('*/results.json')), list(out.iterdir())
