"""The measuring tools besides the benchmark, run as a user runs them.

``python -m benchmarks.NAME`` in a subprocess on tiny corpora written here;
counts are checked against independent computations (a regex tokenizer, a
set of n-grams, scikit-learn), flag errors against the one-line contract.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import config_overrides
from linjax.cli import config_check
from linjax.cli.configs import default

REPO = Path(__file__).resolve().parents[1]
WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'
                   .split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it , . !'.split()
TOKEN = re.compile(r'\w+|[^\w\s]')  # the peers' tokenizer, independent of ours


def _write_tsv(path: Path, n: int, seed: int) -> list:
  """n keyword-separable documents of 3 classes; returns their texts."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  lines, texts = ['label\ttext'], []
  for i in range(n):
    label = names[i % 3]
    toks = list(rng.choice(WORDS[label], 3)) + list(rng.choice(COMMON, 5))
    rng.shuffle(toks)
    texts.append(' '.join(toks).capitalize())
    lines.append(f'{label}\t{texts[-1]}')
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  return texts


@pytest.fixture(name='data_dir')
def _data_dir(tmp_path):
  _write_tsv(tmp_path / 'corpora' / 'toy' / 'train.tsv', 150, 0)
  _write_tsv(tmp_path / 'corpora' / 'toy' / 'test.tsv', 45, 1)
  return tmp_path / 'corpora'


def run(module, *args, check=True):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, '-m', f'benchmarks.{module}',
                         *map(str, args)], capture_output=True, text=True,
                        cwd=REPO, env=env, timeout=300, check=False)
  if check and proc.returncode != 0:
    raise AssertionError(f'{module} failed ({proc.returncode}):\n'
                         f'{proc.stderr[-3000:]}')
  return proc


def json_lines(stdout: str) -> list:
  return [json.loads(l) for l in stdout.splitlines() if l.startswith('{')]


# config_overrides ------------------------------------------------------------


def test_overrides_take_the_defaults_types_and_leave_the_base_alone():
  base = default.get_config()
  epochs = base.train.epochs
  options = config_overrides.apply_overrides(
      base, ['train.epochs=7', 'optimizer.learning_rate=0.5',
             'features.lowercase=false', 'features.tokenizer=words'],
      '--override')
  assert options.training.epochs == 7
  assert type(options.training.epochs) is int
  assert options.optimizer.learning_rate == 0.5
  assert type(options.optimizer.learning_rate) is float
  assert options.features.lowercase is False
  assert options.features.tokenizer == 'words'
  # The rest are the defaults: the adapter's options of the base config.
  untouched = config_check.to_options(base)
  assert options.training.l2 == untouched.training.l2
  assert options.features.ngrams == untouched.features.ngrams
  assert base.train.epochs == epochs and base.features.lowercase is True


@pytest.mark.parametrize('item, fragments', [
    ('train.epoch=3', ["--override: 'train.epoch=3'", 'section.key=value']),
    ('train.epochs', ["--override: 'train.epochs'"]),
    ('train.epochs=many', ['--override train.epochs', 'int', "'many'"]),
    ('train.gradcheck=maybe', ['--override train.gradcheck', 'true or false']),
    ('train.epochs=0', ['--override train.epochs', '0']),  # validation
    ('optimizer.name=lbfgs', ['--override optimizer.name', 'lbfgs']),
])
def test_bad_override_names_the_flag_and_the_item(item, fragments):
  with pytest.raises(config_check.ConfigError) as e:
    config_overrides.apply_overrides(default.get_config(), [item],
                                     '--override')
  message = config_check.one_line(e.value)
  for fragment in fragments:
    assert fragment in message, message


# featurize_speed -------------------------------------------------------------


def test_featurize_speed_counts_the_bag_of_ngrams_scikit_learn_counts(
    tmp_path):
  texts = _write_tsv(tmp_path / 'train.tsv', 60, 2)
  has_sklearn = True
  try:
    import sklearn  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    has_sklearn = False
  proc = run('featurize_speed', f'--data={tmp_path / "train.tsv"}',
             '--repeat=1', f'--sklearn={has_sklearn}')
  rows = {r['system']: r for r in json_lines(proc.stdout)}
  tokens = [TOKEN.findall(t.lower()) for t in texts]
  # Distinct unigrams and bigrams per document: the nonzeros of a bag of
  # n-grams with 2**20 buckets (no collision among these few n-grams).
  distinct = sum(len(set(t) | set(zip(t, t[1:]))) for t in tokens)
  expected = {'linjax.read_corpus', 'linjax.tokenize', 'linjax',
              'linjax.transform'} | ({'sklearn.HashingVectorizer'}
                                     if has_sklearn else set())
  assert set(rows) == expected
  for row in rows.values():
    assert row['docs'] == 60 and row['tokens'] == sum(map(len, tokens))
    assert row['seconds'] > 0
  for system in expected - {'linjax.read_corpus', 'linjax.tokenize'}:
    assert rows[system]['nnz'] == distinct, system


# train_speed and step_microbench --------------------------------------------


def test_train_speed_reports_linjax_sweep_and_fasttext(data_dir, tmp_path):
  try:
    import fasttext  # pylint: disable=g-import-not-at-top,unused-import
    skip_fasttext = False
  except ImportError:
    skip_fasttext = True
  proc = run('train_speed', f'--data_dir={data_dir}', '--corpus=toy',
             '--epochs=2', '--threads=1', '--sweep=1,4:0',
             '--override=train.token_budget=256',
             f'--cache_dir={tmp_path / "cache"}',
             f'--skip_fasttext={skip_fasttext}')
  rows = {r['system']: r for r in json_lines(proc.stdout)}
  assert set(rows) == {'linjax', 'sweep'} | (set() if skip_fasttext
                                              else {'fasttext'})
  texts = [l.split('\t', 1)[1] for l in (data_dir / 'toy' / 'train.tsv')
           .read_text().splitlines()[1:]]
  ours = rows['linjax']
  assert ours['train_docs'] == 150 and ours['precompile'] == 1
  assert ours['train_tokens'] == sum(len(TOKEN.findall(t)) for t in texts)
  assert ours['accuracy'] > 0.9  # keyword-separable classes
  assert ours['featurize_fit_s'] >= ours['fit_s'] > 0
  sweep = rows['sweep']
  assert sweep['models'] == 2 and sweep['best_lr'] in (1.0, 4.0)
  if not skip_fasttext:
    assert 0 <= rows['fasttext']['accuracy'] <= 1
    assert rows['fasttext']['fit_raw_s'] >= rows['fasttext']['fit_s'] >= 0


def test_step_microbench_reuses_its_feature_cache(data_dir, tmp_path):
  cache = tmp_path / 'toy.npz'
  args = (f'--data_dir={data_dir}', '--corpus=toy', '--repeats=2',
          f'--cache={cache}', '--override=train.token_budget=256')
  first = json_lines(run('step_microbench', *args).stdout)
  assert cache.is_file()
  saved = np.load(cache)
  assert saved['ytr'].shape == (150,) and saved['yte'].shape == (45,)
  assert int(saved['C']) == 3 and int(saved['F']) == 2**20
  second = json_lines(run('step_microbench', *args).stdout)
  assert len(first) == len(second) == 1
  for key in ('steps', 'T', 'U'):
    assert first[0][key] == second[0][key], key
  row = first[0]
  assert row['T'] == 256 and row['steps'] >= 1
  assert row['epoch']['best_s'] <= row['epoch']['median_s']


# compare_configs ------------------------------------------------------------


def test_compare_configs_pairs_variants_with_the_default(tmp_path):
  data = tmp_path / 'corpora'
  _write_tsv(data / 'toy' / 'train.tsv', 120, 3)  # no test.tsv: never read
  out = tmp_path / 'rows.jsonl'
  proc = run('compare_configs', f'--data_dir={data}', '--splits=2',
             '--variants=train.epochs=1,optimizer.learning_rate=0.001;'
             'features.shape_ngrams=0;train.loss=sigmoid', f'--out={out}')
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r['variant'] for r in rows] == [
      'default', 'train.epochs=1,optimizer.learning_rate=0.001',
      'features.shape_ngrams=0', 'train.loss=sigmoid']
  base, starved, _, one_vs_rest = rows
  assert one_vs_rest['accuracy'] > 0.9  # one-hot labels for the sigmoid loss
  for r in rows:
    per_split = np.asarray(r['per_split'])
    assert per_split.shape == (2, 2)
    assert r['accuracy'] == pytest.approx(per_split[:, 0].mean())
    deltas = 100 * (per_split[:, 0] - np.asarray(base['per_split'])[:, 0])
    assert r['d_acc_pts'] == pytest.approx(deltas.mean())
    assert r['d_acc_min'] <= r['d_acc_pts'] <= r['d_acc_max']
  # 3 keyword-separable classes: the default learns them; one epoch at a
  # tiny learning rate cannot.
  assert base['accuracy'] > 0.9 and base['d_acc_pts'] == 0
  assert starved['d_acc_pts'] < -20
  assert '| toy | default |' in proc.stdout


# Flags: one line naming the flag, before any work ----------------------------


@pytest.mark.parametrize('module, args, fragments', [
    ('train_speed', [], ['--data_dir', 'required']),
    ('train_speed', ['--data_dir={d}', '--corpus=absent'],
     ['--corpus', 'absent/train.tsv']),
    ('train_speed', ['--data_dir={d}', '--corpus=toy', '--sweep=1,2'],
     ['--sweep', "'1,2'"]),
    ('train_speed', ['--data_dir={d}', '--corpus=toy', '--epochs=0'],
     ['--epochs', '0']),
    ('train_speed', ['--data_dir={d}', '--corpus=toy',
                     '--override=train.epoch=3'],
     ['--override', 'train.epoch']),
    ('step_microbench', [], ['--data_dir', 'required']),
    ('step_microbench', ['--data_dir={d}', '--corpus=toy', '--cache=f.txt'],
     ['--cache', '.npz']),
    ('step_microbench', ['--data_dir={d}', '--corpus=toy', '--repeats=0'],
     ['--repeats', '0']),
    ('featurize_speed', [], ['--data', 'required']),
    ('featurize_speed', ['--data={d}/toy/train.tsv', '--ngrams=0'],
     ['--ngrams', '0']),
    ('featurize_speed', ['--data={d}/nowhere.tsv'], ['--data', 'nowhere.tsv']),
    ('compare_configs', ['--data_dir={d}/nowhere'], ['--data_dir', 'nowhere']),
    ('compare_configs', ['--data_dir={d}', '--variants=train.epochs=many'],
     ['--variants train.epochs', 'many']),
    ('compare_configs', ['--data_dir={d}', '--out={d}/no/rows.jsonl'],
     ['--out', 'no']),
])
def test_bad_flag_is_one_line_naming_it(data_dir, module, args, fragments):
  proc = run(module, *[a.format(d=data_dir) for a in args], check=False)
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), proc.stderr[-2000:]
  for fragment in fragments:
    assert fragment in last, last
