"""The benchmark's command-line systems (benchmarks/cli_systems.py) and issue
20's targets (benchmarks/runner_targets.py)."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from benchmarks import cli_systems
from benchmarks import runner_report
from benchmarks import runner_targets
from test_benchmark import _data_dir  # pylint: disable=unused-import
from test_benchmark import _read_labels
from test_benchmark import _run


def test_timed_measures_the_child_not_the_parent():
  # A parent far bigger than the child: Linux would count the parent's pages
  # into a child it forks directly (a pytest worker of 860 MB did).
  ballast = bytearray(500 * 2**20)
  ballast[::4096] = b'1' * len(ballast[::4096])
  code = ('import time; x = bytearray(150 * 2**20); x[::4096] = b"1" * '
          'len(x[::4096]); time.sleep(0.2)')
  t = cli_systems.timed([sys.executable, '-c', code])
  assert t['rc'] == 0 and t['s'] >= 0.2
  assert 150 <= t['mb'] < 400
  bad = cli_systems.timed([sys.executable, '-c', 'raise SystemExit(3)'])
  assert bad['rc'] == 3
  missing = cli_systems.timed(['linjax-no-such-program'])
  assert missing['rc'] == 127 and 'linjax-no-such-program' in missing['err']
  del ballast


def test_phases_from_the_timeline():
  results = dict(
      compile_seconds=0.25, refit=dict(compile_seconds=0.0),
      timeline=[
          dict(phase='start', start_s=0.0, end_s=1.5),
          dict(phase='imports', start_s=1.5, end_s=1.6),
          dict(phase='read', start_s=1.6, end_s=1.65),
          dict(phase='trace', start_s=1.65, end_s=1.7),
          dict(phase='featurise', start_s=1.7, end_s=2.0),
          dict(phase='gradient check (background)', start_s=1.9, end_s=2.4),
          dict(phase='train', start_s=2.0, end_s=2.5),
          dict(phase='refit', start_s=2.5, end_s=2.6),
          dict(phase='evaluate', start_s=2.6, end_s=2.65),
          dict(phase='top features', start_s=2.65, end_s=2.7),
          dict(phase='save', start_s=2.7, end_s=2.8),
          dict(phase='report', start_s=2.8, end_s=3.0),
          dict(phase='gradient check wait', start_s=3.0, end_s=3.0)])
  p = cli_systems.phases(results, wall=3.25)
  assert p['process_start_s'] == 1.5 and p['imports_s'] == 0.1
  assert p['featurise_s'] == 0.3 and p['read_featurise_s'] == 0.0
  assert p['read_s'] == 0.05 and p['trace_s'] == 0.05
  # The fits (0.5 + 0.1 s) less the 0.25 s compile wait.
  assert p['compile_s'] == 0.25 and p['train_s'] == pytest.approx(0.35)
  assert p['refit_s'] == 0.1 and p['gradient_check_s'] == 0.5
  assert p['save_s'] == pytest.approx(0.15)
  assert p['plots_report_s'] == 0.2 and p['exit_s'] == 0.25
  # Every second of the wall is in exactly one main-thread phase.
  main = ('process_start_s', 'imports_s', 'read_s', 'trace_s', 'featurise_s',
          'compile_s', 'train_s', 'evaluate_s', 'save_s', 'plots_report_s',
          'gradient_check_wait_s', 'exit_s')
  assert sum(p[k] for k in main) == pytest.approx(3.25)


def _cli(corpus='c', system='linjax_cli', scale=1, run='cli', **kw):
  return dict(corpus=corpus, system=system, scale=scale, run=run, **kw)


@pytest.mark.parametrize('warm,met', [(3.0, True), (3.3, False)])
def test_time_above_the_floor(warm, met):
  v = runner_targets.time_above_floor(
      _cli(warm_s=warm), _cli(system='jax_floor', wall_s=1.4),
      _cli(system='fasttext_cli', cli_s=1.7))
  assert v.met is met and '1.70 s' in v.detail


@pytest.mark.parametrize('cold,met', [(4.0, True), (4.01, False)])
def test_cold_at_most_a_second_over_warm(cold, met):
  assert runner_targets.cold_over_warm(_cli(cold_s=cold, warm_s=3.0)).met is met


@pytest.mark.parametrize('peak,met', [(508.0, True), (509.0, False)])
def test_scale_memory_floor_plus_one_and_a_half_fasttext(peak, met):
  v = runner_targets.scale_memory(
      _cli(peak_rss_mb=peak), _cli(system='jax_floor', peak_rss_mb=208.0),
      _cli(system='fasttext_cli', peak_rss_mb=200.0))
  assert v.met is met and '508 MB' in v.detail


def test_streamed_memory_needs_a_streamed_run():
  one = _cli(peak_rss_mb=400.0, run='cli_lean')
  assert runner_targets.streamed_memory(
      _cli(scale=64, peak_rss_mb=600.0, streamed=True), one).met is True
  assert runner_targets.streamed_memory(
      _cli(scale=64, peak_rss_mb=601.0, streamed=True), one).met is False
  assert runner_targets.streamed_memory(
      _cli(scale=64, peak_rss_mb=500.0, streamed=False), one).met is None


@pytest.mark.parametrize('acc,f1,met', [
    (0.899, 0.799, True),     # library - 0.1 point each, and above the peer
    (0.8989, 0.80, False),    # accuracy 0.11 point under the library
    (0.90, 0.7989, False),    # macro-F1 under the library
])
def test_quality_against_the_library_path(acc, f1, met):
  library = dict(corpus='c', system='linjax', accuracy=0.90, macro_f1=0.80)
  peer = dict(corpus='c', system='fasttext', accuracy=0.85, macro_f1=0.75)
  v = runner_targets.quality(_cli(accuracy=acc, macro_f1=f1), library,
                             [library, peer])
  assert v.met is met


def test_quality_against_the_best_peer_of_each_metric():
  library = dict(corpus='c', system='linjax', accuracy=0.90, macro_f1=0.80)
  peers = [library, dict(corpus='c', system='fasttext', accuracy=0.903,
                         macro_f1=0.70),
           dict(corpus='c', system='sklearn_sgd', accuracy=0.80,
                macro_f1=0.8031)]
  # 0.3 point under each best peer passes; F1 0.31 under does not.
  assert runner_targets.quality(_cli(accuracy=0.90, macro_f1=0.8001),
                                library, peers).met is True
  assert runner_targets.quality(_cli(accuracy=0.90, macro_f1=0.80),
                                library, peers).met is False


def test_featurise_target_only_over_half_a_million_tokens():
  small = _cli(train_tokens=90_000, featurize_seconds=1.0)
  assert runner_targets.featurise(small).met is None
  big = _cli(train_tokens=4_000_000, featurize_seconds=0.9)
  assert runner_targets.featurise(big).met is True
  assert runner_targets.featurise(
      _cli(train_tokens=4_000_000, featurize_seconds=1.1)).met is False


def test_judge_matches_rows_by_corpus_and_scale():
  rows = [_cli(warm_s=3.0, cold_s=3.5, accuracy=0.9, macro_f1=0.8,
               train_tokens=100),
          _cli(system='jax_floor', wall_s=1.5, peak_rss_mb=200.0),
          _cli(system='fasttext_cli', cli_s=2.0, peak_rss_mb=190.0),
          _cli(scale=8, warm_s=9.0, peak_rss_mb=450.0, train_tokens=800),
          _cli(system='fasttext_cli', scale=8, cli_s=8.0, peak_rss_mb=200.0)]
  judged = {(j['corpus'], j['scale']): j['verdicts']
            for j in runner_targets.judge(rows)}
  one, eight = judged[('c', 1)], judged[('c', 8)]
  assert one['1 time'].met is True and one['1 cold'].met is True
  assert one['3 quality'].met is None          # no library or peer rows
  assert eight['2 time'].met is False and eight['2 memory'].met is True
  assert '2 time' not in one and '1 time' not in eight
  table = runner_report.targets_table(rows)
  assert table.count('\n| c |') == 2


@pytest.mark.skipif(shutil.which(cli_systems.FASTTEXT) is None,
                    reason='fastText CLI not installed (apt-get install '
                    'fasttext)')
def test_cli_systems_end_to_end(data_dir, tmp_path):
  out, md = tmp_path / 'rows.jsonl', tmp_path / 'tables.md'
  proc = _run(f'--data_dir={data_dir}', '--corpora=two',
              '--systems=jax_floor,fasttext_cli,linjax_cli', '--threads=1',
              f'--out={out}', f'--markdown={md}', timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = {r['system']: r for r in map(json.loads,
                                      out.read_text().splitlines())}
  assert set(rows) == {'jax_floor', 'fasttext_cli', 'linjax_cli'}
  for r in rows.values():
    assert 'error' not in r, r
    assert r['run'] == 'cli' and r['peak_rss_mb'] > 0
  ft, runner = rows['fasttext_cli'], rows['linjax_cli']
  # fastText's own P@1 (its `test`) is the accuracy of its predictions.
  assert ft['accuracy'] == pytest.approx(ft['fasttext_p_at_1'], abs=1e-3)
  assert ft['cli_s'] == pytest.approx(ft['prep_s'] + ft['train_s'] +
                                      ft['test_s'])
  assert runner['cold_s'] > 0 and runner['warm_s'] > 0
  assert runner['n_train'] == len(_read_labels(data_dir / 'two' /
                                               'train.tsv'))
  assert runner['phases']['process_start_s'] > 0
  assert rows['jax_floor']['wall_s'] > 0
  tables = md.read_text()
  assert "The warm runner's phases" in tables and '| two | 1 |' in tables


def test_before_after_table_from_the_shared_script_rows():
  row = dict(corpus='sms_spam', fasttext_cli_s=0.8, linjax_cold_s=2.6,
             linjax_warm_s=2.2, linjax_peak_mb=270, fasttext_peak_mb=196,
             linjax_acc=0.9865, fasttext_acc=0.99)
  table = runner_report.before_after_table([
      dict(tree='/tmp/before', load_1m=0.5, floor_s=1.5, floor_mb=208,
           row=dict(row, linjax_warm_s=3.75)),
      dict(tree='/work/main', load_1m=0.4, floor_s=1.4, floor_mb=208,
           row=row),
      dict(tree='/work/main', load_1m=0.4, floor_s=1.4, floor_mb=208,
           row=None)])
  lines = table.splitlines()
  assert len(lines) == 5
  # warm - floor: 3.75 - 1.5 and 2.2 - 1.4, and their ratio to fastText.
  assert '| 2.25 | 2.81 |' in lines[2] and '| 0.80 | 1.00 |' in lines[3]
  assert 'failed' in lines[4]
