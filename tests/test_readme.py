"""Every code block of README.md runs, as written (issue 23).

* The first two bash blocks are the install-and-run and test commands: the
  first runs in a fresh virtual environment in tests/test_install.py, the
  second is the one .ci/run runs (checked here).
* Named file blocks (```tsv train.tsv) are written to a temporary folder,
  a corpus followed by more documents of its format (to train on), a
  ```python file as it is; the
  other bash blocks then run there in README order, ``linjax`` being this
  checkout's command (``python -m linjax``).
* Python blocks run there too, each in a fresh interpreter, with their
  imports as written; the scikit-learn example is the one
  tests/test_estimator.py runs (checked here).
* Generated sections: the commands table (from linjax/cli/main.py's
  COMMANDS) and the benchmark table (from the newest benchmark tables in
  BUILD_NOTES.md): one number, one place. ``python tests/test_readme.py
  --update`` rewrites both.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
BLOCK = re.compile(r'```([a-z]*)([^\n]*)\n(.*?)```', re.S)
WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'.split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it'.split()
TAGS = ['role::program', 'use::editing', 'interface::x11', 'devel::library',
        'works-with::text']


def blocks(text=None):
  """[(language, name or '', code)] of README.md's fenced blocks."""
  text = README.read_text(encoding='utf-8') if text is None else text
  return [(lang, name.strip(), code) for lang, name, code in
          BLOCK.findall(text)]


# -- generated sections --------------------------------------------------------


def commands_table() -> str:
  from linjax.cli import main  # pylint: disable=import-outside-toplevel
  rows = ['| command | what it does |', '| --- | --- |']
  rows += [f'| `linjax {name}` | {text} |'
           for name, (_, text) in main.COMMANDS.items()]
  return '\n'.join(rows)


PEERS = {'fasttext': 'fastText', 'sklearn_sgd': 'scikit-learn SGD',
         'sklearn_lbfgs': 'scikit-learn L-BFGS'}
BENCH_HEADER = '| corpus | system | accuracy | macro-F1 | fit s | fit raw s |'
CLI_HEADER = '| corpus | scale | fastText CLI s (prep+train+test) |'


def latest_table(notes: str, header: str) -> list:
  """The rows (dicts by column) of the newest table that starts with
  ``header`` in BUILD_NOTES (sessions are newest first; the tables are those
  `benchmarks.benchmark --markdown` writes)."""
  at = notes.find(header)
  assert at >= 0, f'no table {header} in BUILD_NOTES.md'
  lines = notes[at:].splitlines()
  head = [c.strip() for c in lines[0].strip('|').split('|')]
  rows = []
  for line in lines[2:]:
    if not line.startswith('|'):
      break
    rows.append(dict(zip(head, (c.strip() for c in
                                line.strip('|').split('|')))))
  return rows


def latest_benchmark(notes: str) -> list:
  """The newest benchmark table of the library path and the peers."""
  return latest_table(notes, BENCH_HEADER)


def benchmark_table() -> str:
  notes = (ROOT / 'BUILD_NOTES.md').read_text('utf-8')
  rows = latest_benchmark(notes)
  # The whole job (process start to exit) at 1x, when that run measured it.
  jobs = {r['corpus']: r for r in latest_table(notes, CLI_HEADER)
          if r['scale'] == '1'} if CLI_HEADER in notes else {}
  out = ['| corpus | linjax accuracy / macro-F1 | best peer accuracy | '
         'linjax fit s (cold / warm cache) | fastText fit s (from raw text) '
         '| whole job s: `linjax train` warm / fastText\'s command line |',
         '| --- | --- | --- | --- | --- | --- |']
  for corpus in dict.fromkeys(r['corpus'] for r in rows):
    by = {r['system']: r for r in rows if r['corpus'] == corpus}
    peers = [r for s, r in by.items() if s in PEERS]
    best = max(peers, key=lambda r: float(r['accuracy']))
    cold, warm, fast = by['linjax'], by.get('linjax_warm'), by['fasttext']
    job = jobs.get(corpus)
    whole = (f'{job["runner cold / warm s"].split(" / ")[1]} / '
             f'{job["fastText CLI s (prep+train+test)"].split()[0]}'
             if job else '-')
    out.append(
        f'| {corpus} | {cold["accuracy"]} / {cold["macro-F1"]} | '
        f'{best["accuracy"]} ({PEERS[best["system"]]}) | {cold["fit s"]} / '
        f'{warm["fit s"] if warm else "-"} | {fast["fit s"]} '
        f'({fast["fit raw s"]}) | {whole} |')
  return '\n'.join(out)


SECTIONS = {'commands': commands_table, 'benchmark': benchmark_table}


def generated(text: str, name: str) -> str:
  match = re.search(rf'<!-- {name}: [^\n]*-->\n(.*?)\n<!-- end {name} -->',
                    text, re.S)
  assert match, f'README.md has no generated {name} section'
  return match.group(1)


def update(text: str) -> str:
  for name, make in SECTIONS.items():
    old = generated(text, name)
    start = text.index(old, text.index(f'<!-- {name}: '))
    text = text[:start] + make() + text[start + len(old):]
  return text


@pytest.mark.parametrize('name', sorted(SECTIONS))
def test_generated_section_is_up_to_date(name):
  text = README.read_text(encoding='utf-8')
  assert generated(text, name) == SECTIONS[name](), (
      f'README.md\'s {name} table is stale: python tests/test_readme.py '
      '--update')


def test_one_number_per_claim():
  """The healthtweets accuracy appears once (in the generated table): the
  README said 0.765 in one place and 0.7600 in another."""
  text = README.read_text(encoding='utf-8')
  rows = latest_benchmark((ROOT / 'BUILD_NOTES.md').read_text('utf-8'))
  accuracy = next(r['accuracy'] for r in rows
                  if (r['corpus'], r['system']) == ('healthtweets', 'linjax'))
  assert text.count(accuracy) == 1
  assert not re.search(r'\b0\.76\d*\b', text.replace(accuracy, ''))


# -- the two commands ------------------------------------------------------------


def test_readme_starts_with_the_two_commands():
  first, second = blocks()[:2]
  assert first[0] == second[0] == 'bash'
  assert first[2].startswith('pip install') and (
      'python -m experiments.train' in first[2])
  assert 'pytest' in second[2]
  # The test command is the one CI runs, verbatim.
  assert second[2].strip() in (ROOT / '.ci' / 'run').read_text()


def test_no_undefined_names():
  # `linjax.interpret` was an AttributeError; the module is analysis's.
  import linjax  # pylint: disable=import-outside-toplevel
  for name in set(re.findall(r'`linjax\.([a-z_]+)\b', README.read_text())):
    assert hasattr(linjax, name) or name in ('analysis', 'engine', 'text',
                                             'data', 'core', 'cli'), name


# -- the blocks run ----------------------------------------------------------------


def _documents(n, seed):
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  for i in range(n):
    label = names[i % 3]
    words = list(rng.choice(WORDS[label], 3)) + list(rng.choice(COMMON, 5))
    rng.shuffle(words)
    yield label, ' '.join(words)


def _more(lang: str, name: str, n=150, seed=0) -> str:
  """n more documents in the format of README block ``name``."""
  docs = list(_documents(n, seed))
  if name == 'tags.tsv':
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
      tags = sorted(rng.choice(TAGS, rng.integers(1, 4), replace=False))
      words = [t.split('::')[1] for t in tags] + list(rng.choice(COMMON, 4))
      lines.append(f'{"|".join(tags)}\t{" ".join(words)}')
    return '\n'.join(lines) + '\n'
  if lang == 'tsv':
    return ''.join(f'{l}\t{t}\n' for l, t in docs)
  if lang == 'csv':
    return ''.join(f'{l},"{t}"\n' for l, t in docs)
  if lang == 'json':
    return ''.join(json.dumps(dict(label=l, text=t)) + '\n' for l, t in docs)
  return ''.join(f'__label__{l} {t}\n' for l, t in docs)


def run_group(args, timeout, **kwargs) -> subprocess.CompletedProcess:
  """`subprocess.run` in a process group of its own, killed whole on a
  timeout or an error here (no child outlives the test)."""
  proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True, **kwargs)
  try:
    out, err = proc.communicate(timeout=timeout)
  except BaseException:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    raise
  return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _command(code: str) -> str:
  """A README bash block with ``linjax`` as this checkout's command."""
  return re.sub(r'(?m)^linjax ', f'"{sys.executable}" -m linjax ', code)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  """A folder with the README's files, after its bash blocks ran there."""
  base = tmp_path_factory.mktemp('readme')
  for lang, name, code in blocks():
    if name:   # a file the README shows; a corpus gets more documents
      more = '' if lang == 'python' else _more(lang, name)
      (base / name).write_text(code + more, encoding='utf-8')
  (base / 'test.tsv').write_text('label\ttext\n' + _more('tsv', 'test.tsv',
                                                         45, 1))
  (base / 'new_texts.txt').write_text('the team won\n\nthe nurse and '
                                      'the doctor\n')
  for label, text in _documents(90, 2):   # the class-folder corpus
    folder = base / 'reviews' / label
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f'{len(list(folder.iterdir())):03d}.txt').write_text(text)
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  runs = []
  for lang, name, code in blocks()[2:]:
    if lang != 'bash':
      continue
    proc = run_group(['bash', '-euo', 'pipefail', '-c', _command(code)],
                     timeout=1200, cwd=base, env=env)
    assert proc.returncode == 0, (code, proc.stderr[-3000:])
    runs.append((code, proc))
  return dict(base=base, env=env, runs=runs)


@pytest.mark.slow
def test_bash_blocks_run_and_write_what_the_readme_says(workspace):
  base = workspace['base']
  assert len(workspace['runs']) >= 3
  for run in ('run1', 'run_mine', 'run_tsv', 'run_csv', 'run_jsonl',
              'run_fasttext', 'run_folder', 'run_tags', 'run2'):
    results = json.loads((base / run / 'results.json').read_text())
    assert (base / run / 'model' / 'model.json').is_file(), run
    assert (base / run / 'metrics.jsonl').is_file(), run
    assert results['num_classes'] == (len(TAGS) if run == 'run_tags'
                                      else 3), run
  assert (base / 'run1' / 'report.html').is_file()
  mine = json.loads((base / 'run_mine' / 'results.json').read_text())
  assert mine['config']['features']['ngrams'] == 3   # my_config.py's
  assert (base / 'tune1' / 'best_config.py').is_file()
  from linjax import saved_model  # pylint: disable=import-outside-toplevel
  assert saved_model.load(base / 'run1' / 'model-int8').precision == 'int8'
  quick = workspace['runs'][0][1].stdout.splitlines()
  predictions = [l for l in quick
                 if re.fullmatch(r'(sports|health|tech)\t[0-9.]+', l)]
  assert len(predictions) == 3    # one per line of new_texts.txt
  assert predictions[0].startswith('sports\t')


def _python_blocks():
  return [code for lang, _, code in blocks() if lang == 'python']


def _block(marker: str) -> str:
  """The one python block that contains ``marker``."""
  found = [c for c in _python_blocks() if marker in c]
  assert len(found) == 1, (marker, len(found))
  return found[0]


# The blocks with their own checks: the lecture's example, the pipeline, and
# the scikit-learn example (run by tests/test_estimator.py).
FUNCTIONAL, PIPELINE, ESTIMATOR = ('linjax.check_grad(', 'interpret.explain(',
                                   'LinjaxClassifier')


def _run_python(code, cwd, env=None):
  out = run_group([sys.executable, '-c', code], timeout=600, cwd=cwd,
                  env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def test_readme_functional_example_runs():
  stdout = _run_python(_block(FUNCTIONAL), ROOT)
  assert '1.609' in stdout          # -log 0.2
  assert 'PASS' in stdout


def test_readme_pipeline_example_runs():
  stdout = _run_python(_block(PIPELINE), ROOT)
  spam = float(re.search(r"'spam': (?:np\.float32\()?([0-9.]+)", stdout)[1])
  assert spam > 0.9, stdout          # the spam words win
  assert 'predicted spam' in stdout and 'cheap' in stdout


def test_readme_estimator_example_is_the_tested_one():
  """The scikit-learn example runs in test_estimator.test_readme_snippet."""
  example = _block(ESTIMATOR)
  tested = (ROOT / 'tests' / 'test_estimator.py').read_text(encoding='utf-8')
  tested = tested.split('# --- README ---')[1].split('# --- end ---')[0]

  def code(block):
    return [line.strip() for line in block.splitlines()
            if line.strip() and not line.strip().startswith(('#', 'from ',
                                                             'import '))]

  assert code(example) == code(tested)


@pytest.mark.slow
def test_every_other_python_block_runs_in_the_workspace(workspace):
  """Blocks that read a run's files (results.json, the model) run where
  the bash blocks wrote them; the others run there too."""
  others = [c for c in _python_blocks()
            if not any(m in c for m in (FUNCTIONAL, PIPELINE, ESTIMATOR))]
  assert others
  for code in others:
    stdout = _run_python(code, workspace['base'], workspace['env'])
    if 'results.json' in code:
      assert re.search(r'test accuracy [01]\.\d{3}, macro-F1 [01]\.\d{3}', stdout)
      assert "['sports']" in stdout


if __name__ == '__main__':
  if sys.argv[1:] == ['--update']:
    sys.path.insert(0, str(ROOT))
    README.write_text(update(README.read_text(encoding='utf-8')),
                      encoding='utf-8')
    print(f'updated {README}')
  else:
    sys.exit('usage: python tests/test_readme.py --update')
