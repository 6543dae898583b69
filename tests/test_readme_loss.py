"""README.md's "## Your own loss" runs as written (extracted, not copied).

Its bash block writes a user's loss module with optax, trains it with the
runner (``--config.train.loss=mylosses:poly1``) and predicts; its python
block trains the same loss through `linjax.fit`, saves, loads and predicts.
Both run in a fresh folder, ``linjax`` being this checkout's command.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTION = '## Your own loss'
CLASSES = ('fortunes', 'limerick', 'murphy', 'startrek', 'zippy')  # demo


def section_blocks():
  """[(language, code)] of the README section's fenced blocks."""
  text = (ROOT / 'README.md').read_text(encoding='utf-8')
  assert text.count(SECTION) == 1, 'README.md lost its "Your own loss"'
  body = text.split(SECTION, 1)[1].split('\n## ', 1)[0]
  return [(lang, code) for lang, code in
          re.findall(r'```([a-z]*)[^\n]*\n(.*?)```', body, re.S)]


def test_the_section_has_a_loss_module_the_runner_and_python():
  blocks = section_blocks()
  assert [lang for lang, _ in blocks] == ['bash', 'python']
  bash, python = (code for _, code in blocks)
  assert 'cat > mylosses.py' in bash and 'import optax' in bash
  assert '--config.train.loss=mylosses:poly1' in bash
  for call in ('linjax.fit(', 'save_model(', 'load_model(', '.predict('):
    assert call in python, call


@pytest.mark.slow
def test_the_readme_section_runs(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  outputs = []
  for lang, code in section_blocks():
    if lang == 'bash':
      code = re.sub(r'(?m)^linjax ', f'"{sys.executable}" -m linjax ', code)
      command = ['bash', '-euo', 'pipefail', '-c', code]
    else:
      command = [sys.executable, '-c', code]
    proc = subprocess.run(command, cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=900)
    assert proc.returncode == 0, (code, proc.stderr[-3000:])
    outputs.append(proc.stdout)
  results = json.loads((tmp_path / 'run_poly1' / 'results.json').read_text())
  assert results['loss'] == 'mylosses:poly1'
  assert results['test_accuracy'] > 0.6
  assert results['gradcheck']['passed']
  # The runner printed one prediction: a demo class and its probability.
  predicted = [line.split('\t') for line in outputs[0].splitlines()
               if line.split('\t')[0] in CLASSES]
  assert len(predicted) == 1 and 0 < float(predicted[0][1]) <= 1
  # The python block: poly1's training loss, the recorded loss, a label
  # and probabilities that sum to 1.
  lines = outputs[1].splitlines()
  assert float(lines[0]) < 0.1
  assert lines[1] == "mylosses:poly1 ['spam']"
  probs = [float(v) for v in re.findall(r'[0-9.]+', lines[2])]
  assert len(probs) == 2 and abs(sum(probs) - 1) < 2e-3
  model = json.loads((tmp_path / 'poly1_model' / 'model.json').read_text())
  assert model['loss'] == 'mylosses:poly1'
