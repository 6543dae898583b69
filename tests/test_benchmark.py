"""The benchmark harness end to end on tiny corpora, and its report logic.

The end-to-end test runs ``python -m benchmarks.benchmark`` as a user would
(one child process per corpus and system) on two corpora written here, and
checks every row's keys and that its accuracy and macro-F1 are scikit-learn's,
recomputed from the predictions the worker returns against test labels read
here independently.
"""

from __future__ import annotations

import json
from pathlib import Path
import random
import subprocess
import sys

import pytest

from benchmarks import benchmark
from benchmarks import benchmark_report
from benchmarks import benchmark_targets

REPO = Path(__file__).resolve().parents[1]

ROW_KEYS = {
    'corpus', 'system', 'accuracy', 'macro_f1', 'fit_s', 'predict_s',
    'train_tokens', 'peak_rss_mb', 'import_rss_mb', 'data_rss_mb', 'import_s',
    'n_train', 'n_test', 'n_classes', 'jax_backend', 'device_kind',
    'jax_version', 'date', 'machine', 'scale', 'threads', 'run'}

WORDS = {
    'sport': 'ball goal team match score win coach league'.split(),
    'health': 'doctor flu vaccine patient health drug virus care'.split(),
    'tech': 'code chip data cloud phone app robot laptop'.split(),
}
COMMON = 'the a of and to in is it , . !'.split()


def _write_corpus(folder: Path, classes, n_train: int, n_test: int,
                  seed: int) -> None:
  rng = random.Random(seed)
  folder.mkdir(parents=True)
  for name, n in (('train', n_train), ('test', n_test)):
    lines = ['label\ttext']
    for i in range(n):
      label = classes[i % len(classes)]
      words = rng.choices(WORDS[label], k=4) + rng.choices(COMMON, k=4)
      if rng.random() < 0.2:  # some noise, so scores are not all 1.0.
        words = rng.choices(sum(WORDS.values(), []), k=6)
      rng.shuffle(words)
      lines.append(f'{label}\t{" ".join(words).capitalize()}')
    (folder / f'{name}.tsv').write_text('\n'.join(lines) + '\n',
                                        encoding='utf-8')


def _read_labels(path: Path) -> list:
  with open(path, encoding='utf-8') as f:
    next(f)
    return [line.split('\t', 1)[0] for line in f]


def _run(*args, timeout=120):
  return subprocess.run([sys.executable, '-m', 'benchmarks.benchmark', *args],
                        cwd=REPO, capture_output=True, text=True,
                        timeout=timeout, check=False)


@pytest.fixture(name='data_dir')
def _data_dir(tmp_path):
  data_dir = tmp_path / 'corpora'
  _write_corpus(data_dir / 'three', ['sport', 'health', 'tech'], 45, 24, 0)
  _write_corpus(data_dir / 'two', ['sport', 'health'], 30, 16, 1)
  (data_dir / 'not_a_corpus').mkdir()
  return data_dir


def test_warm_compile_cache_row_gives_the_same_model(data_dir, tmp_path):
  pytest.importorskip('jax')
  out = tmp_path / 'rows.jsonl'
  proc = _run(f'--data_dir={data_dir}', '--corpora=two',
              '--systems=linjax,linjax_warm', '--threads=1', f'--out={out}',
              '--predictions')
  assert proc.returncode == 0, proc.stderr[-3000:]
  cold, warm = [json.loads(line) for line in out.read_text().splitlines()]
  assert (cold['system'], warm['system']) == ('linjax', 'linjax_warm')
  assert (cold['compile_cache'], warm['compile_cache']) == ('off', 'warm')
  assert warm['predictions'] == cold['predictions']
  assert warm['accuracy'] == cold['accuracy']
  assert 'linjax_warm' in proc.stdout  # in the Markdown table


def test_end_to_end(data_dir, tmp_path):
  metrics = pytest.importorskip('sklearn.metrics')
  pytest.importorskip('jax')
  out, md = tmp_path / 'rows.jsonl', tmp_path / 'table.md'
  proc = _run(f'--data_dir={data_dir}', '--systems=linjax,sklearn_sgd',
              '--threads=1', f'--out={out}', f'--markdown={md}',
              '--predictions', '--linjax_sweep', '--sweep_learning_rates=1,4',
              '--sweep_l2s=0')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [(r['corpus'], r['system']) for r in rows] == [
      ('three', 'linjax'), ('three', 'sklearn_sgd'), ('three', 'linjax_sweep'),
      ('two', 'linjax'), ('two', 'sklearn_sgd'), ('two', 'linjax_sweep')]
  for r in rows:
    assert 'error' not in r, r
    assert ROW_KEYS <= set(r), ROW_KEYS - set(r)
    truth = _read_labels(data_dir / r['corpus'] / 'test.tsv')
    assert r['n_test'] == len(truth) and len(r['predictions']) == len(truth)
    assert r['accuracy'] == pytest.approx(
        metrics.accuracy_score(truth, r['predictions']), abs=5e-5)
    assert r['macro_f1'] == pytest.approx(
        metrics.f1_score(truth, r['predictions'], average='macro'), abs=5e-5)
    assert r['peak_rss_mb'] >= r['data_rss_mb'] >= r['import_rss_mb'] > 0
    assert r['fit_s'] > 0 and r['predict_s'] > 0 and r['train_tokens'] > 0
    assert r['machine']['cpu_count'] >= 1 and r['jax_backend']
  linjax_row = rows[0]
  assert {'featurize_s', 'compile_s', 'train_s'} <= set(linjax_row['phases'])
  sweep = rows[2]['sweep']
  assert sweep['best_lr'] in (1.0, 4.0) and len(sweep['grid']) == 2
  assert rows[2]['config']['learning_rate'] == sweep['best_lr']
  assert 0 < sweep['n_val'] < rows[2]['n_train']
  table = md.read_text()
  assert table in proc.stdout
  main, phases, targets = [part for part in table.split('\n\n')
                           if part.startswith('| corpus |')]
  body = [l for l in main.splitlines() if l.startswith('| three')
          or l.startswith('| two')]
  assert len(body) == 6
  for corpus, system in (('three', 'linjax'), ('two', 'sklearn_sgd')):
    assert any(l.startswith(f'| {corpus} | {system} |') for l in body)
  assert phases.count('| two | linjax |') == 1
  # Targets of the linjax rows only; without fastText, 2 and 3 are n/a.
  assert [l.split(' | ')[1] for l in targets.splitlines()[2:]] == [
      'linjax', 'linjax_sweep', 'linjax', 'linjax_sweep']
  assert 'n/a (no fastText fit_raw_s)' in targets


def test_unknown_system_names_the_flag(data_dir):
  proc = _run(f'--data_dir={data_dir}', '--systems=linjax,vowpal')
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert '--systems' in lines[0] and 'vowpal' in lines[0]


def test_missing_data_dir_is_one_line(tmp_path):
  proc = _run(f'--data_dir={tmp_path / "nowhere"}')
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert '--data_dir' in lines[0] and 'nowhere' in lines[0]


def test_unknown_corpus_names_the_flag(data_dir):
  proc = _run(f'--data_dir={data_dir}', '--corpora=two,not_a_corpus')
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines()[-1].startswith('error: --corpora')


def test_failing_worker_gives_an_error_row(tmp_path):
  row = benchmark.spawn(tmp_path / 'absent', 'sklearn_sgd', threads=1)
  assert row['system'] == 'sklearn_sgd' and row['corpus'] == 'absent'
  assert 'FileNotFoundError' in row['error']


def test_score_matches_sklearn():
  metrics = pytest.importorskip('sklearn.metrics')
  rng = random.Random(0)
  for _ in range(20):
    labels = rng.sample('abcdef', rng.randint(1, 6))
    truth = [rng.choice(labels) for _ in range(rng.randint(1, 40))]
    pred = [rng.choice(labels + ['z']) for _ in truth]
    got = benchmark.score(truth, pred)
    assert got['accuracy'] == pytest.approx(metrics.accuracy_score(truth, pred))
    assert got['macro_f1'] == pytest.approx(
        metrics.f1_score(truth, pred, average='macro', zero_division=0))


def _row(system, acc, f1, fit, mem, corpus='c', **more):
  return dict(corpus=corpus, system=system, accuracy=acc, macro_f1=f1,
              fit_s=fit, predict_s=0.1, peak_rss_mb=mem, import_rss_mb=10,
              run='main', **more)


def _linjax(fit=1.0, mem=300, acc=0.700, f1=0.600, tokens=600_000,
            featurize_s=0.1, **more):
  phases = dict(featurize_s=featurize_s, pack_s=0.05, compile_s=0.1,
                train_s=0.3, epochs_run=4, token_budget=512,
                steps_per_epoch=100)
  return _row('linjax', acc, f1, fit, mem, train_tokens=tokens, phases=phases,
              **more)


def test_compare_deltas_against_best_peer_and_fasttext():
  rows = [_linjax(acc=0.700, f1=0.600, fit=1.0, mem=300),
          _row('fasttext', 0.690, 0.610, 2.0, 100, fit_raw_s=2.5),
          _row('sklearn_sgd', 0.704, 0.604, 3.0, 50),
          dict(corpus='c', system='sklearn_lbfgs', run='main', error='boom')]
  by_system = {c['row']['system']: c for c in benchmark.compare(rows)}
  ours = by_system['linjax']
  assert ours['d_acc'] == pytest.approx(-0.4)   # against sklearn_sgd
  assert ours['d_f1'] == pytest.approx(-1.0)    # against fasttext
  assert ours['fit_ratio'] == pytest.approx(0.5)
  assert ours['raw_ratio'] == pytest.approx(0.4)
  assert ours['mem_ratio'] == pytest.approx(3.0)
  verdicts = {k: v.met for k, v in ours['targets'].items()}
  assert verdicts == dict(featurise=True, fit=True, memory=False,
                          quality=False, fit_stretch=True)
  assert 'targets' not in by_system['fasttext']  # peers are not judged
  table = benchmark.main_table(rows)
  assert '| c | fasttext | 0.6900 | 0.6100 | 2.00 | 2.50 |' in table
  assert '| c | sklearn_lbfgs | error: boom |' in table
  targets = benchmark_report.targets_table(rows)
  assert targets.count('\n') == 2  # header, rule, the linjax row
  assert ('| c | linjax | yes (6.00 M tokens/s, target 4) | yes (1.00 s vs '
          '2.50 s fastText raw, 0.40x) | NO (3.00x fastText, target <= 1.5x) '
          '| NO (acc -0.40, F1 -1.00 pts) | yes (0.50x fastText fit_s) |'
          in targets)


@pytest.mark.parametrize('tokens, seconds, met', [
    (600_000, 0.15, True),    # 4.0 M tokens/s exactly
    (600_000, 0.151, False),  # 3.97 M tokens/s
    (500_000, 0.10, True),    # not over 0.5 M tokens: 0.1 s is the bound
    (500_000, 0.11, False),
    (40_000, 0.01, True),
])
def test_featurise_target(tokens, seconds, met):
  verdict = benchmark_targets.featurise(_linjax(tokens=tokens,
                                                featurize_s=seconds))
  assert verdict.met is met, verdict


@pytest.mark.parametrize('fit, raw, sgd, met, against', [
    (0.9, 1.0, 0.4, True, 'fastText raw'),   # SGD under 0.5 s: not a bound
    (1.1, 1.0, 0.4, False, 'fastText raw'),
    (1.0, 1.0, 3.0, True, 'fastText raw'),   # equal passes
    (0.9, 1.0, 0.8, False, 'sklearn SGD'),   # SGD over 0.5 s and faster
    (0.7, 1.0, 0.8, True, 'sklearn SGD'),
    (0.5, 1.0, 0.51, True, 'sklearn SGD'),
])
def test_fit_target_against_fasttext_raw_and_slow_sgd(fit, raw, sgd, met,
                                                      against):
  rows = [_row('fasttext', 0.5, 0.5, raw / 2, 100, fit_raw_s=raw),
          _row('sklearn_sgd', 0.5, 0.5, sgd, 100)]
  verdict = benchmark_targets.fit(_linjax(fit=fit), rows)
  assert verdict.met is met and against in verdict.detail, verdict


def test_fit_target_needs_fasttext_raw_time_and_sgd():
  sgd = _row('sklearn_sgd', 0.5, 0.5, 1.0, 100)
  old_fasttext = _row('fasttext', 0.5, 0.5, 1.0, 100)  # no fit_raw_s
  assert benchmark_targets.fit(_linjax(), [old_fasttext, sgd]).met is None
  fasttext = dict(old_fasttext, fit_raw_s=2.0)
  assert benchmark_targets.fit(_linjax(), [fasttext]).met is None
  failed = dict(corpus='c', system='sklearn_sgd', error='boom')
  assert benchmark_targets.fit(_linjax(), [fasttext, failed]).met is None
  assert 'n/a' in benchmark_targets.fit(_linjax(), [fasttext]).cell()


@pytest.mark.parametrize('mem, met', [(150, True), (151, False), (90, True)])
def test_memory_target(mem, met):
  fasttext = _row('fasttext', 0.5, 0.5, 1.0, 100)
  assert benchmark_targets.memory(_linjax(mem=mem), fasttext).met is met
  assert benchmark_targets.memory(_linjax(mem=mem), None).met is None


@pytest.mark.parametrize('acc, f1, met', [
    (0.797, 0.697, True),    # 0.3 points under each best: passes
    (0.7969, 0.700, False),  # accuracy 0.31 under
    (0.800, 0.6969, False),  # macro-F1 0.31 under (another peer's best)
    (0.900, 0.800, True),
])
def test_quality_target_against_each_metrics_best_peer(acc, f1, met):
  rows = [_row('fasttext', 0.800, 0.650, 1.0, 100),
          _row('sklearn_sgd', 0.750, 0.700, 1.0, 100),
          _linjax(acc=0.999, f1=0.999)]  # not a peer: never the bar
  verdict = benchmark_targets.quality(_linjax(acc=acc, f1=f1), rows)
  assert verdict.met is met, verdict


def test_phases_table_splits_fit():
  rows = [_linjax(fit=1.0, tokens=600_000, featurize_s=0.3),
          _row('fasttext', 0.5, 0.5, 0.4, 100, fit_raw_s=0.7)]
  table = benchmark_report.phases_table(rows)
  # other = 1.0 - (0.3 featurise + 0.05 pack + 0.1 compile + 0.3 train)
  assert ('| c | linjax | 600,000 | 0.30 | 2.00 | 0.05 | 0.10 | 0.30 | 4 | '
          '512 | 100 | 0.25 | 1.00 | 0.70 | 0.40 |' in table)


def test_scaling_table_ratios_against_fasttext():
  rows = []
  for scale in (1, 2):
    for system, fit, mem in (('linjax', 1.0 * scale, 300), ('fasttext',
                                                             2.0 * scale, 100)):
      rows.append(dict(_row(system, 0.7, 0.6, fit, mem, corpus='h'),
                       run='scaling', scale=scale, n_train=10 * scale,
                       train_tokens=1_000_000 * scale))
  table = benchmark.scaling_table(rows)
  assert ('| h | 2 | 20 | 2000000 | linjax | 2.00 | 1.00 | 300 | - | 0.50 | '
          '3.00 | NO (3.00x fastText, target <= 1.5x) |' in table)
  assert benchmark.main_table(rows).count('\n') == 1  # no main rows.


def test_median_run_keeps_every_time():
  runs = [dict(_row('linjax', 0.7, 0.6, fit, 100), predict_s=p)
          for fit, p in ((3.0, 0.3), (1.0, 0.1), (2.0, 0.2))]
  row = benchmark.median_run(runs)
  assert row['fit_s'] == 2.0 and row['predict_s'] == 0.2
  assert row['fit_s_runs'] == [3.0, 1.0, 2.0] and row['repeat'] == 3
  assert benchmark.median_run(runs + [dict(error='x')])['error'] == 'x'
