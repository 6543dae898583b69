"""The experiment runners end to end, as a user runs them (subprocesses)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'.split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it'.split()
FAST = ['--config.train.checkpoint_every=0', '--config.train.gradcheck=False']


def _write_tsv(path, n, seed):
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  lines = ['label\ttext']
  for i in range(n):
    label = names[i % 3]
    toks = list(rng.choice(WORDS[label], 3)) + list(rng.choice(COMMON, 5))
    rng.shuffle(toks)
    lines.append(f'{label}\t{" ".join(toks)}')
  path.write_text('\n'.join(lines) + '\n')
  return path


def run(module, *args, stdin=None, check=True):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, '-m', f'experiments.{module}',
                         *map(str, args)], input=stdin, capture_output=True,
                        text=True, cwd=ROOT, env=env, timeout=300)
  if check and proc.returncode != 0:
    raise AssertionError(f'{module} failed ({proc.returncode}):\n'
                         f'{proc.stderr[-3000:]}')
  return proc


def assert_one_line_error(proc, *fragments):
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), proc.stderr[-2000:]
  for fragment in fragments:
    assert fragment in last, last


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """One TSV training run (with the gradient check and checkpoints)."""
  base = tmp_path_factory.mktemp('runners')
  train_file = _write_tsv(base / 'train.tsv', 150, 0)
  test_file = _write_tsv(base / 'test.tsv', 45, 1)
  workdir = base / 'run'
  proc = run('train', '--config=experiments/configs/default.py',
             f'--config.data.train={train_file}',
             f'--config.data.test={test_file}', '--config.train.epochs=2',
             f'--workdir={workdir}')
  return dict(base=base, train=train_file, test=test_file, workdir=workdir,
              stdout=proc.stdout)


PNGS = ('curves.png', 'confusion_matrix.png', 'templates.png')


def test_train_writes_everything(trained):
  workdir = trained['workdir']
  for name in ('results.json', 'metrics.jsonl', 'model/model.json',
               'report.html'):
    assert (workdir / name).is_file(), name
  for name in PNGS:   # drawn on demand (linjax plots), or with --plots
    assert not (workdir / name).exists(), name
  assert len(os.listdir(workdir / 'model')) >= 2     # the manifest and arrays
  assert not (workdir / 'checkpoints').exists()      # removed after success
  assert not (workdir / 'test_split.jsonl').exists()  # data.test was given
  results = json.loads((workdir / 'results.json').read_text())
  assert results['plots'] == []
  # The phases in the order they ran, within the process's life.
  phases = [p['phase'] for p in results['timeline']]
  main = [p for p in phases if not p.endswith('(background)')]
  assert main == ['start', 'imports', 'read', 'trace', 'featurise', 'train',
                  'refit', 'evaluate', 'top features', 'report', 'save',
                  'report wait', 'gradient check wait'], phases
  assert 'gradient check (background)' in phases
  assert 'report (background)' in phases
  spans = [(p['start_s'], p['end_s']) for p in results['timeline']
           if not p['phase'].endswith('(background)')]
  assert spans[0][0] == 0.0 and all(a <= b for a, b in spans)
  assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # one by one
  assert results['refit']['epochs'] == 2
  assert results['refit']['num_docs'] == 150
  # The templates of every class, as the summary prints them.
  assert [t['label'] for t in results['top_features']] == [
      'health', 'sports', 'tech']
  for t in results['top_features']:
    assert t['features'] and all(w > 0 for _, w in t['features'])
  for key in ('test_accuracy', 'test_macro_f1', 'val_accuracy',
              'train_seconds', 'featurize_seconds', 'num_classes',
              'num_features', 'epochs_run', 'compile_seconds', 'gradcheck',
              'config'):
    assert key in results, key
  assert results['num_classes'] == 3 and results['epochs_run'] == 2
  assert results['num_test'] == 45          # the given test file
  assert results['num_train'] + results['num_val'] == 150
  assert results['num_features'] == 2**20
  assert results['gradcheck']['passed'] is True
  assert results['test_accuracy'] > 0.9
  assert results['config']['train']['epochs'] == 2
  epochs = [json.loads(l) for l in
            (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [e['epoch'] for e in epochs] == [1, 2]
  assert all(np.isfinite(e['train_loss']) for e in epochs)
  assert 'top features per class' in trained['stdout']
  assert 'health:' in trained['stdout']


def test_plots_on_demand(trained, tmp_path):
  proc = run('plots', f'--workdir={trained["workdir"]}',
             f'--out={tmp_path}')
  for name in PNGS:
    assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', name
    assert f'wrote {tmp_path / name}' in proc.stdout
  proc = run('plots', f'--workdir={tmp_path / "none"}', check=False)
  assert_one_line_error(proc, '--workdir', 'results.json')
  assert not (tmp_path / 'none').exists()


def test_evaluate_matches_training_results(trained):
  out = trained['base'] / 'report.json'
  proc = run('evaluate', f'--model={trained["workdir"] / "model"}',
             f'--data={trained["test"]}', f'--out={out}')
  report = json.loads(out.read_text())
  results = json.loads((trained['workdir'] / 'results.json').read_text())
  assert report['accuracy'] == pytest.approx(results['test_accuracy'])
  assert report['macro_f1'] == pytest.approx(results['test_macro_f1'])
  assert report['num_examples'] == 45
  assert np.sum(report['confusion_matrix']) == 45
  assert [r['label'] for r in report['per_class']] == ['health', 'sports',
                                                       'tech']
  assert 'confusion matrix' in proc.stdout


def test_predict_stdin_and_file(trained):
  model = trained['workdir'] / 'model'
  lines = ['doctor nurse drug the', 'goal ball team a', '', 'cloud chip app']
  proc = run('predict', f'--model={model}', '--input=-', '--top_k=2',
             '--jsonl', stdin='\n'.join(lines) + '\n')
  rows = [json.loads(l) for l in proc.stdout.splitlines()]
  assert len(rows) == 4
  assert [r['label'] for r in [rows[0], rows[1], rows[3]]] == [
      'health', 'sports', 'tech']
  for r in rows:
    assert len(r['top_k']) == 2
    assert r['top_k'][0]['probability'] >= r['top_k'][1]['probability']
    assert r['probability'] == r['top_k'][0]['probability']
  # The saved model predicts identically in this process.
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  proba = saved_model.load(model).predict_proba(lines)
  np.testing.assert_allclose([r['probability'] for r in rows],
                             proba.max(axis=1), rtol=1e-5)
  text_file = trained['base'] / 'docs.txt'
  text_file.write_text('\n'.join(lines[:2]) + '\n')
  proc = run('predict', f'--model={model}', f'--input={text_file}')
  out = [l.split('\t') for l in proc.stdout.splitlines()]
  assert [o[0] for o in out] == ['health', 'sports'] and len(out[0]) == 2


def test_demo_corpus_default_config(tmp_path):
  workdir = tmp_path / 'demo'
  run('train', '--config=experiments/configs/default.py',
      '--config.train.epochs=1', '--config.data.max_per_class=150',
      *FAST, f'--workdir={workdir}')
  results = json.loads((workdir / 'results.json').read_text())
  assert results['num_classes'] == 5
  assert results['labels'] == ['fortunes', 'limerick', 'murphy', 'startrek',
                               'zippy']
  assert results['test_accuracy'] > 0.4     # chance is 0.2
  assert (workdir / 'model' / 'model.json').is_file()


# Every bad value is covered in-process by tests/test_config_check.py; here
# the command line path for two of them (and an unknown key), and the
# library path for all.
@pytest.mark.parametrize('args,fragments', [
    (['--config.optimizer.learning_rate=-1'],
     ['--config.optimizer.learning_rate must be > 0, got -1']),
    (['--config.data.train=/nonexistent/x.tsv', '--config.train.epochs=0'],
     ['--config.data.train', '/nonexistent/x.tsv', '--config.train.epochs']),
    (['--config.train.epoch=3'],
     ["--config.train.epoch: no such config key (did you mean 'epochs'?)"]),
])
def test_bad_flags_fail_fast(tmp_path, args, fragments):
  proc = run('train', *args, f'--workdir={tmp_path / "w"}', check=False)
  assert_one_line_error(proc, *fragments)
  assert not (tmp_path / 'w').exists()      # failed before any work


def test_train_and_evaluate_validates_first(tmp_path):
  from linjax.cli import train as train_runner  # pylint: disable=g-import-not-at-top
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  from linjax.cli.config_check import ConfigError  # pylint: disable=g-import-not-at-top
  from test_config_check import BAD  # pylint: disable=g-import-not-at-top
  for key, value, message in BAD:
    config = default.get_config()
    section, name = key.split('.')
    with config.ignore_type():
      config[section][name] = value
    with pytest.raises(ConfigError, match=f'--config.{key}'):
      train_runner.train_and_evaluate(config, str(tmp_path / 'w'))
    assert not (tmp_path / 'w').exists(), key


def test_bad_file_and_divergence(trained, tmp_path):
  bad = tmp_path / 'bad.tsv'
  bad.write_text('label\ttext\nsports\tball game\nno tab on this line\n')
  proc = run('train', f'--config.data.train={bad}', *FAST,
             f'--workdir={tmp_path / "w1"}', check=False)
  assert_one_line_error(proc, f'{bad}:3')
  proc = run('train', f'--config.data.train={trained["train"]}', *FAST,
             '--config.optimizer.learning_rate=1e38',
             f'--workdir={tmp_path / "w2"}', check=False)
  assert_one_line_error(proc, 'diverged', 'learning rate')


def test_damaged_model_one_line(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  model = tmp_path / 'model'
  shutil.copytree(trained['workdir'] / 'model', model)
  arrays = max((p for p in model.iterdir() if p.name != 'model.json'),
               key=lambda p: p.stat().st_size)   # W's file, whatever format
  with open(arrays, 'r+b') as f:
    f.truncate(1000)
  proc = run('predict', f'--model={model}', '--input=-', stdin='ball\n',
             check=False)
  assert_one_line_error(proc, arrays.name)


def test_gradcheck_runner(trained, tmp_path):
  proc = run('gradcheck', f'--data={trained["train"]}', '--num_docs=8',
             '--table_rows=3', '--sizes=10,40', '--classes=3',
             f'--workdir={tmp_path}')
  assert 'PASS' in proc.stdout and 'slope' in proc.stdout
  out = json.loads((tmp_path / 'gradcheck.json').read_text())
  assert out['check']['passed'] and len(out['check']['table']) == 3
  assert [r['num_features'] for r in out['timing']] == [10, 40]
  assert out['timing'][1]['loss_evals'] == 2 * (40 * 3 + 3)
  assert all(r['numerical_rel_error'] < 1e-6 for r in out['timing'])


def test_landscape_runner(trained, tmp_path):
  proc = run('landscape', f'--model={trained["workdir"] / "model"}',
             f'--data={trained["train"]}', '--grid=5', '--num_evals=20',
             '--num_docs=50', f'--workdir={tmp_path}')
  out = json.loads((tmp_path / 'landscape.json').read_text())
  for row in out['search']:
    assert row['gradient_best'] < row['random_best']
  s = out['slices']
  assert len(s['slice_1d']) == 5 and np.shape(s['slice_2d']) == (5, 5)
  # alpha = 0 is the model itself; alpha = -1 along W is the zero init.
  assert s['slice_1d'][2] == pytest.approx(s['objective_at_model'], rel=1e-5)
  assert s['slice_toward_init'][0] == pytest.approx(np.log(3), rel=1e-5)
  for name in ('search_1d.png', 'search_2d.png', 'search_paths.png',
               'slice_1d.png', 'slice_2d.png'):
    assert (tmp_path / name).is_file(), name
  assert 'gradient descent' in proc.stdout


def test_sweep_runner(trained, tmp_path):
  proc = run('sweep', f'--config.data.train={trained["train"]}',
             '--config.train.epochs=2', *FAST, '--learning_rates=0.5,2',
             '--l2s=0,1e-4', f'--workdir={tmp_path}')
  out = json.loads((tmp_path / 'sweep.json').read_text())
  assert [(r['lr'], r['l2']) for r in out['grid']] == [
      (0.5, 0.0), (0.5, 1e-4), (2.0, 0.0), (2.0, 1e-4)]
  best = max(out['grid'], key=lambda r: r['val_accuracy'])
  assert out['best']['val_accuracy'] == best['val_accuracy']
  assert out['test_accuracy'] > 0.9
  assert '<- best' in (tmp_path / 'sweep.txt').read_text()
  assert 'best: learning_rate=' in proc.stdout
  proc = run('sweep', '--learning_rates=0.5,-1', f'--workdir={tmp_path}',
             check=False)
  assert_one_line_error(proc, '--learning_rates values must be > 0, got -1')
