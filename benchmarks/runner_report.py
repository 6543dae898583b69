"""Markdown tables of the command-line runs: the runner against fastText's
command line, the runner's phases, and issue 20's targets.

Pure functions of the rows `benchmarks.benchmark` writes (benchmarks/
cli_systems.py fills the command-line ones; the targets are
benchmarks/runner_targets.py).
"""

from __future__ import annotations

from typing import Sequence

from benchmarks import peers
from benchmarks import runner_targets

PHASES = (('process start', 'process_start_s'), ('imports', 'imports_s'),
          ('read', 'read_s'), ('trace', 'trace_s'),
          ('featurise', 'featurise_s'),
          ('read+featurise (streamed)', 'read_featurise_s'),
          ('compile wait', 'compile_s'), ('train', 'train_s'),
          ('of which refit', 'refit_s'),
          ('gradient check (background)', 'gradient_check_s'),
          ('gradient check wait', 'gradient_check_wait_s'),
          ('evaluate', 'evaluate_s'), ('save', 'save_s'),
          ('plots and report', 'plots_report_s'), ('exit', 'exit_s'))


def _ok(row) -> bool:
  return row is not None and 'error' not in row


def _f(v, spec='.2f') -> str:
  return '-' if v is None else format(v, spec)


def _cli_rows(rows, run='cli'):
  return [r for r in rows if r.get('run') == run]


def _get(rows, corpus, system, scale, run='cli'):
  found = [r for r in rows if r.get('corpus') == corpus and
           r.get('system') == system and r.get('scale', 1) == scale and
           r.get('run') == run and _ok(r)]
  return found[0] if found else None


def cli_table(rows: Sequence[dict]) -> str:
  """One line per (corpus, scale): walls, memory and quality."""
  lines = ['| corpus | scale | fastText CLI s (prep+train+test) | JAX floor s '
           '| runner cold / warm s | warm - floor s | (warm - floor) / '
           'fastText | peak RSS MB runner / fastText / floor | runner acc / '
           'F1 | library acc / F1 | best peer acc / F1 | run |',
           '|' + ' --- |' * 12]
  for r in _cli_rows(rows):
    if r.get('system') != 'linjax_cli':
      continue
    c, k = r['corpus'], r.get('scale', 1)
    if not _ok(r):
      lines.append(f'| {c} | {k} | error: {r["error"]} |' + ' |' * 9)
      continue
    ft = _get(rows, c, 'fasttext_cli', k)
    floor = _get(rows, c, 'jax_floor', 1)
    main = [m for m in rows if m.get('corpus') == c and
            m.get('run', 'main') == 'main' and _ok(m)]
    lib = next((m for m in main if m['system'] == 'linjax'), None)
    others = [m for m in main if m['system'] in peers.PEERS]
    above = r['warm_s'] - floor['wall_s'] if floor else None
    how = 'streamed' if r.get('streamed') else (
        'in memory, refit' if r.get('refit') else 'in memory')
    lines.append(
        f'| {c} | {k} | '
        + (f'{ft["cli_s"]:.2f} ({ft["prep_s"]:.2f}+{ft["train_s"]:.2f}+'
           f'{ft["test_s"]:.2f})' if ft else '-')
        + f' | {_f(floor and floor["wall_s"])} | {r["cold_s"]:.2f} / '
        f'{r["warm_s"]:.2f} | {_f(above)} | '
        f'{_f(above / ft["cli_s"] if ft and above is not None else None)} | '
        f'{r["peak_rss_mb"]:.0f} / {_f(ft and ft["peak_rss_mb"], ".0f")} / '
        f'{_f(floor and floor["peak_rss_mb"], ".0f")} | '
        f'{r["accuracy"]:.4f} / {r["macro_f1"]:.4f} | '
        + (f'{lib["accuracy"]:.4f} / {lib["macro_f1"]:.4f}' if lib else '-')
        + ' | '
        + (f'{max(o["accuracy"] for o in others):.4f} / '
           f'{max(o["macro_f1"] for o in others):.4f}' if others else '-')
        + f' | {how} |')
  return '\n'.join(lines)


def phases_table(rows: Sequence[dict]) -> str:
  """The warm runner's wall split into its phases (seconds)."""
  lines = ['| corpus | scale | ' + ' | '.join(n for n, _ in PHASES)
           + ' | wall |', '|' + ' --- |' * (len(PHASES) + 3)]
  for r in _cli_rows(rows) + _cli_rows(rows, 'cli_lean'):
    if r.get('system') != 'linjax_cli' or not _ok(r):
      continue
    p = r['phases']
    scale = f'{r.get("scale", 1)}' + (' (lean)' if r['run'] == 'cli_lean'
                                      else '')
    lines.append(f'| {r["corpus"]} | {scale} | '
                 + ' | '.join(_f(p.get(key)) for _, key in PHASES)
                 + f' | {r["warm_s"]:.2f} |')
  return '\n'.join(lines)


def targets_table(rows: Sequence[dict]) -> str:
  """Issue 20's targets as yes/no per corpus and scale."""
  lines = ['| corpus | scale | ' + ' | '.join(runner_targets.TARGETS) + ' |',
           '|' + ' --- |' * (len(runner_targets.TARGETS) + 2)]
  for j in runner_targets.judge(rows):
    cells = ' | '.join(j['verdicts'][t].cell() if t in j['verdicts'] else ''
                       for t in runner_targets.TARGETS)
    scale = f'{j["scale"]}' + (' (lean)' if j.get('lean') else '')
    lines.append(f'| {j["corpus"]} | {scale} | {cells} |')
  return '\n'.join(lines)


def report(rows: Sequence[dict]) -> str:
  """The three tables, or '' without command-line rows."""
  if not _cli_rows(rows) and not _cli_rows(rows, 'cli_lean'):
    return ''
  t = runner_targets
  return (
      '\n\nThe main job as a user times it (process start to exit; '
      'benchmarks/cli_systems.py): fastText\'s command line (Debian '
      'package), linjax\'s runner cold (fresh compile cache) and warm, '
      'JAX\'s floor:\n\n' + cli_table(rows)
      + '\n\nThe warm runner\'s phases (seconds; results.json timeline):\n\n'
      + phases_table(rows)
      + f'\n\nTargets (issue 20): 1 warm - floor <= fastText CLI, cold <= '
      f'warm + {t.COLD_SLACK_S:g} s; 2 at scale warm <= fastText CLI, peak '
      f'RSS <= floor + {t.MEMORY_FACTOR:g} x fastText, out of core (lean: '
      f'no gradient check or checkpoints) <= {t.STREAMED_FACTOR:g} x the 1x '
      f'run; 3 accuracy and macro-F1 >= library - '
      f'{100 * t.LIBRARY_SLACK:g} and >= best peer - '
      f'{100 * t.PEER_SLACK:g} points; 5 featurisation >= 4 M tokens/s '
      '(the runner\'s featurise phase):\n\n' + targets_table(rows))


def before_after_table(lines: Sequence[dict]) -> str:
  """Markdown from benchmarks/runner_before_after.sh's JSON lines: per
  corpus, the old and the new tree's runner against fastText's command line
  (the shared script's row) and the JAX floor measured beside it."""
  out = ['| corpus | tree | load | fastText CLI s | JAX floor s | runner cold '
         '/ warm s | warm - floor s | (warm - floor) / fastText | peak RSS '
         'MB runner / fastText / floor | accuracy runner / fastText |',
         '|' + ' --- |' * 10]
  for line in lines:
    r = line.get('row')
    if not r:
      out.append(f'| ? | {line["tree"]} | {line.get("load_1m")} | failed |'
                 + ' |' * 6)
      continue
    above = r['linjax_warm_s'] - line['floor_s']
    out.append(
        f'| {r["corpus"]} | {line["tree"]} | {line.get("load_1m")} | '
        f'{r["fasttext_cli_s"]:.2f} | {line["floor_s"]:.2f} | '
        f'{r["linjax_cold_s"]:.2f} / {r["linjax_warm_s"]:.2f} | {above:.2f} '
        f'| {above / r["fasttext_cli_s"]:.2f} | {r["linjax_peak_mb"]} / '
        f'{r["fasttext_peak_mb"]} / {line["floor_mb"]} | '
        f'{r["linjax_acc"]:.4f} / {r["fasttext_acc"]:.4f} |')
  return '\n'.join(out)
