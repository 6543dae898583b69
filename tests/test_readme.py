"""The README's Python example runs and prints what it claims."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands():
  text = (ROOT / 'README.md').read_text(encoding='utf-8')
  blocks = re.findall(r'```bash\n(.*?)```', text, flags=re.S)
  assert 'python -m experiments.train' in blocks[0]
  assert 'pytest' in blocks[1]
  # The test command is the one CI runs.
  assert blocks[1].strip() in (ROOT / '.ci' / 'run').read_text()


def _run_example(index):
  text = (ROOT / 'README.md').read_text(encoding='utf-8')
  example = re.findall(r'```python\n(.*?)```', text, flags=re.S)[index]
  out = subprocess.run([sys.executable, '-c', example], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  return out.stdout


def test_readme_functional_example_runs():
  stdout = _run_example(0)
  assert '1.609' in stdout          # -log 0.2
  assert 'PASS' in stdout


def test_readme_pipeline_example_runs():
  stdout = _run_example(1)
  spam = float(re.search(r"'spam': (?:np\.float32\()?([0-9.]+)", stdout)[1])
  assert spam > 0.9, stdout          # the spam words win
  assert 'predicted spam' in stdout and 'cheap' in stdout


def test_readme_estimator_example_is_the_tested_one():
  """The scikit-learn example runs in test_estimator.test_readme_snippet."""
  text = (ROOT / 'README.md').read_text(encoding='utf-8')
  example = re.findall(r'```python\n(.*?)```', text, flags=re.S)[2]
  tested = (ROOT / 'tests' / 'test_estimator.py').read_text(encoding='utf-8')
  tested = tested.split('# --- README ---')[1].split('# --- end ---')[0]

  def code(block):
    return [line.strip() for line in block.splitlines()
            if line.strip() and not line.strip().startswith(('#', 'from ',
                                                             'import '))]

  assert code(example) == code(tested)
