"""The runners with train.loss=sigmoid (multi-label), as a user runs them."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))
from test_runners import run  # pylint: disable=g-import-not-at-top,wrong-import-position
TAGS = {'games': 'play level arcade puzzle joystick'.split(),
        'audio': 'sound music mp3 mixer speaker'.split(),
        'net': 'http server network proxy socket'.split()}
COMMON = 'the a tool for linux and of'.split()
FAST = ['--config.train.checkpoint_every=0']


def _write_fasttext(path, n, seed, untagged_every=0, noise=0.0):
  """Documents with 1-3 tags (or none every ``untagged_every``-th line); a
  ``noise`` share of them also takes the words of a random tag."""
  rng = np.random.default_rng(seed)
  names = sorted(TAGS)
  lines = []
  for i in range(n):
    if untagged_every and i % untagged_every == 0:
      tags = []
    else:
      tags = list(rng.choice(names, rng.integers(1, 4), replace=False))
    sources = list(tags)
    if noise and rng.random() < noise:
      sources.append(names[rng.integers(len(names))])
    words = [w for t in sources for w in rng.choice(TAGS[t], 2)]
    words += list(rng.choice(COMMON, 4))
    rng.shuffle(words)
    lines.append(' '.join([f'__label__{t}' for t in tags] + words))
  path.write_text('\n'.join(lines) + '\n')
  return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  base = tmp_path_factory.mktemp('multilabel')
  train_file = _write_fasttext(base / 'train.txt', 240, 0, untagged_every=10)
  test_file = _write_fasttext(base / 'test.txt', 60, 1)
  workdir = base / 'run'
  proc = run('train', '--config=experiments/configs/default.py',
             f'--workdir={workdir}', f'--config.data.train={train_file}',
             f'--config.data.test={test_file}', '--config.train.loss=sigmoid',
             '--config.data.allow_unlabeled=True',
             '--config.optimizer.learning_rate=8', '--config.train.epochs=8',
             '--config.features.min_df=1', *FAST)
  return dict(base=base, workdir=workdir, train=train_file, test=test_file,
              stdout=proc.stdout)


def test_train_writes_multilabel_results_and_model(trained):
  results = json.loads((trained['workdir'] / 'results.json').read_text())
  assert results['labels'] == sorted(TAGS)
  assert 0.05 <= results['threshold'] <= 0.95
  report = results['test_report']
  assert results['test_micro_f1'] == report['micro_f1']
  assert results['test_accuracy'] == report['p_at_1'] == results['test_p_at_1']
  assert results['test_micro_f1'] > 0.9 and results['test_accuracy'] > 0.9
  assert results['gradcheck']['passed'] is True   # the sigmoid gradient
  model = json.loads((trained['workdir'] / 'model' / 'model.json').read_text())
  assert model['loss'] == 'sigmoid'
  assert model['extra']['threshold'] == results['threshold']
  assert 'micro-F1' in trained['stdout'] and 'P@1' in trained['stdout']


def test_predict_threshold_and_top_k(trained):
  model = trained['workdir'] / 'model'
  texts = ('sound music play level\nhttp proxy\nthe of and\n')
  proc = run('predict', f'--model={model}', '--input=-', '--jsonl',
             stdin=texts)
  rows = [json.loads(line) for line in proc.stdout.splitlines()]
  assert len(rows) == 3
  assert {r['label'] for r in rows[0]['top_k'][:2]} == {'audio', 'games'}
  assert rows[1]['top_k'][0]['label'] == 'net'
  threshold = json.loads((model / 'model.json').read_text())[
      'extra']['threshold']
  for row in rows:
    assert all(r['probability'] >= threshold for r in row['top_k'])
  # --top_k caps the labels, --threshold=0 keeps every label.
  proc = run('predict', f'--model={model}', '--input=-', '--top_k=1',
             stdin=texts)
  lines = proc.stdout.splitlines()
  assert len(lines) == 3 and lines[0].split('\t')[0] in ('audio', 'games')
  proc = run('predict', f'--model={model}', '--input=-', '--threshold=0',
             stdin=texts)
  assert all(len(line.split('\t')) == 2 * len(TAGS)
             for line in proc.stdout.splitlines())
  proc = run('predict', f'--model={model}', '--input=-', '--threshold=1.5',
             stdin=texts, check=False)
  assert proc.returncode != 0 and 'threshold' in proc.stderr


def test_evaluate_multilabel(trained, tmp_path):
  out = tmp_path / 'report.json'
  proc = run('evaluate', f'--model={trained["workdir"] / "model"}',
             f'--data={trained["test"]}', f'--out={out}')
  report = json.loads(out.read_text())
  results = json.loads((trained['workdir'] / 'results.json').read_text())
  assert report['micro_f1'] == pytest.approx(results['test_micro_f1'])
  assert report['p_at_1'] == pytest.approx(results['test_p_at_1'])
  assert 'P@1' in proc.stdout and 'micro' in proc.stdout
  strict = run('evaluate', f'--model={trained["workdir"] / "model"}',
               f'--data={trained["test"]}', '--threshold=0.99')
  assert strict.stdout != proc.stdout


def test_carved_test_split_round_trips(trained, tmp_path):
  workdir = tmp_path / 'carved'
  run('train', '--config=experiments/configs/default.py',
      f'--workdir={workdir}', f'--config.data.train={trained["train"]}',
      '--config.train.loss=sigmoid', '--config.data.allow_unlabeled=True',
      '--config.train.epochs=2', '--config.train.gradcheck=False', *FAST)
  split = [json.loads(line) for line in
           (workdir / 'test_split.jsonl').read_text().splitlines()]
  assert all(isinstance(row['label'], list) for row in split)
  proc = run('evaluate', f'--model={workdir / "model"}',
             f'--data={workdir / "test_split.jsonl"}')
  assert f'{len(split)} documents' in proc.stdout


def test_config_errors(trained, tmp_path):
  proc = run('train', '--config=experiments/configs/default.py',
             f'--workdir={tmp_path / "w"}', f'--config.data.train='
             f'{trained["train"]}', '--config.data.allow_unlabeled=True',
             check=False)
  assert proc.returncode != 0
  assert 'data.allow_unlabeled' in proc.stderr.strip().splitlines()[-1]
  proc = run('train', '--config=experiments/configs/default.py',
             f'--workdir={tmp_path / "w2"}', '--config.train.loss=sigmoid',
             check=False)
  assert proc.returncode != 0
  assert 'data.train' in proc.stderr.strip().splitlines()[-1]
  # A line without a label names its file and line.
  proc = run('train', '--config=experiments/configs/default.py',
             f'--workdir={tmp_path / "w3"}',
             f'--config.data.train={trained["train"]}',
             '--config.train.loss=sigmoid', *FAST, check=False)
  last = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode != 0 and f'{trained["train"]}:1:' in last
  assert 'allow_unlabeled' in last


def test_multilabel_config_file_trains_tags(tmp_path):
  """experiments/configs/multilabel.py alone (no --config.train.loss) is a
  sigmoid run whose settings reach the model and its results."""
  train_file = _write_fasttext(tmp_path / 'train.txt', 240, 2)
  test_file = _write_fasttext(tmp_path / 'test.txt', 60, 3)
  workdir = tmp_path / 'run'
  run('train', '--config=experiments/configs/multilabel.py',
      f'--workdir={workdir}', f'--config.data.train={train_file}',
      f'--config.data.test={test_file}', *FAST)
  results = json.loads((workdir / 'results.json').read_text())
  config = results['config']
  assert config['train']['loss'] == 'sigmoid'
  assert (config['features']['buckets'], config['features']['min_df'],
          config['optimizer']['learning_rate']) == (2**18, 1, 12.0)
  assert (config['train']['batch_size'], config['train']['token_budget']) == (
      16, 256)
  assert results['num_features'] == 2**18 and results['epochs_run'] == 6
  # Two tag words per tag and no noise: each document's tags are learnable.
  assert results['test_micro_f1'] > 0.9 and results['test_accuracy'] > 0.9
