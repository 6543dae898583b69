"""Markdown report of the benchmark's rows: main, phases, targets, scaling.

Pure functions of the rows that `benchmarks.benchmark` writes (one dict per
corpus and system). The targets (issue 11's 1-4, judged per corpus for the
linjax systems) are benchmarks/benchmark_targets.py.
"""

from __future__ import annotations

from typing import Sequence

from benchmarks import benchmark_targets
from benchmarks import peers

LINJAX_SYSTEMS = ('linjax', 'linjax_warm', 'linjax_sweep')


def _ok(row: dict) -> bool:
  return 'error' not in row


def _fmt(v, spec: str = '.4f') -> str:
  return '-' if v is None else format(v, spec)


def _ratio(a, b):
  return a / b if a is not None and b else None


def _main_rows(rows: Sequence[dict]) -> list[dict]:
  return [r for r in rows if r.get('run', 'main') == 'main']


def compare(rows: Sequence[dict]) -> list[dict]:
  """Per main row: deltas vs the best peer, ratios vs fastText, targets.

  Returns:
    One dict per main row: ``row``; ``d_acc``/``d_f1`` (points against the
    best peer's accuracy / macro-F1); ``fit_ratio``, ``raw_ratio`` and
    ``mem_ratio`` (against fastText's fit_s, fit_raw_s and peak RSS); for a
    linjax row ``targets``, `benchmark_targets.judge`'s verdicts.
  """
  out = []
  main = _main_rows(rows)
  for r in main:
    same = [p for p in main if p['corpus'] == r['corpus'] and _ok(p)]
    peer_rows = [p for p in same if p['system'] in peers.PEERS]
    ft = next((p for p in peer_rows if p['system'] == 'fasttext'), None)
    c = dict(row=r)
    if _ok(r) and peer_rows:
      c['d_acc'] = 100 * (r['accuracy'] - max(p['accuracy']
                                              for p in peer_rows))
      c['d_f1'] = 100 * (r['macro_f1'] - max(p['macro_f1']
                                             for p in peer_rows))
    if _ok(r) and ft:
      c['fit_ratio'] = _ratio(r['fit_s'], ft['fit_s'])
      c['raw_ratio'] = _ratio(r['fit_s'], ft.get('fit_raw_s'))
      c['mem_ratio'] = _ratio(r['peak_rss_mb'], ft['peak_rss_mb'])
    if _ok(r) and r['system'] in LINJAX_SYSTEMS:
      c['targets'] = benchmark_targets.judge(r, same)
    out.append(c)
  return out


def main_table(rows: Sequence[dict]) -> str:
  """Markdown: one line per (corpus, system) of the main run."""
  lines = [
      '| corpus | system | accuracy | macro-F1 | fit s | fit raw s | '
      'predict s | peak RSS MB | import RSS MB | Δacc pts | ΔF1 pts | '
      'fit / fastText raw | fit / fastText | mem / fastText |',
      '|' + ' --- |' * 14]
  for c in compare(rows):
    r = c['row']
    if not _ok(r):
      lines.append(f'| {r["corpus"]} | {r["system"]} | error: {r["error"]} |'
                   + ' |' * 11)
      continue
    lines.append(
        f'| {r["corpus"]} | {r["system"]} | {_fmt(r["accuracy"])} | '
        f'{_fmt(r["macro_f1"])} | {_fmt(r["fit_s"], ".2f")} | '
        f'{_fmt(r.get("fit_raw_s"), ".2f")} | '
        f'{_fmt(r["predict_s"], ".2f")} | {_fmt(r["peak_rss_mb"], ".0f")} | '
        f'{_fmt(r.get("import_rss_mb"), ".0f")} | '
        f'{_fmt(c.get("d_acc"), "+.2f")} | {_fmt(c.get("d_f1"), "+.2f")} | '
        f'{_fmt(c.get("raw_ratio"), ".2f")} | '
        f'{_fmt(c.get("fit_ratio"), ".2f")} | '
        f'{_fmt(c.get("mem_ratio"), ".2f")} |')
  return '\n'.join(lines)


def phases_table(rows: Sequence[dict]) -> str:
  """Markdown: linjax's fit split into its phases, beside fastText's fit.

  "other" is fit_s less the phases: label encoding, starting the
  background compile, tracing, the slot-budget estimate, a sweep.
  """
  main = _main_rows(rows)
  lines = ['| corpus | system | train tokens | featurise s | M tokens/s | '
           'pack s | compile wait s | train s | epochs | T | steps/epoch | '
           'other s | fit s | fastText fit raw s | fastText fit s |',
           '|' + ' --- |' * 15]
  for r in main:
    if not _ok(r) or 'phases' not in r:
      continue
    p = r['phases']
    ft = next((f for f in main if f['corpus'] == r['corpus']
               and f['system'] == 'fasttext' and _ok(f)), {})
    known = (p['featurize_s'] + p.get('pack_s', 0.0) + p['compile_s']
             + p['train_s'])
    lines.append(
        f'| {r["corpus"]} | {r["system"]} | {r["train_tokens"]:,} | '
        f'{p["featurize_s"]:.2f} | '
        f'{r["train_tokens"] / max(p["featurize_s"], 1e-9) / 1e6:.2f} | '
        f'{p.get("pack_s", 0.0):.2f} | {p["compile_s"]:.2f} | '
        f'{p["train_s"]:.2f} | {p.get("epochs_run", "-")} | '
        f'{p.get("token_budget", "-")} | {p.get("steps_per_epoch", "-")} | '
        f'{r["fit_s"] - known:.2f} | {r["fit_s"]:.2f} | '
        f'{_fmt(ft.get("fit_raw_s"), ".2f")} | {_fmt(ft.get("fit_s"), ".2f")} |')
  return '\n'.join(lines)


def targets_table(rows: Sequence[dict]) -> str:
  """Markdown: targets 1-4 as yes/no per corpus and linjax system."""
  lines = ['| corpus | system | 1 featurise | 2 fit | 3 memory | 4 quality | '
           'stretch: fit <= fastText fit_s |', '|' + ' --- |' * 7]
  for c in compare(rows):
    if 'targets' not in c:
      continue
    t, r = c['targets'], c['row']
    cells = ' | '.join(t[k].cell() for k in (*benchmark_targets.TARGETS,
                                             'fit_stretch'))
    lines.append(f'| {r["corpus"]} | {r["system"]} | {cells} |')
  return '\n'.join(lines)


def scaling_table(rows: Sequence[dict]) -> str:
  """Markdown: fit time and peak memory against training-set size.

  The memory column is target 3 at each scale (linjax rows).
  """
  rows = [r for r in rows if r.get('run') == 'scaling']
  lines = ['| corpus | scale | train docs | train tokens | system | fit s | '
           'M tokens/s | peak RSS MB | fit / fastText raw | fit / fastText | '
           'mem / fastText | 3 memory |', '|' + ' --- |' * 12]
  for r in rows:
    if not _ok(r):
      lines.append(f'| {r["corpus"]} | {r["scale"]} | | | {r["system"]} | '
                   f'error: {r["error"]} |' + ' |' * 6)
      continue
    ft = next((p for p in rows if p['scale'] == r['scale'] and _ok(p)
               and p['system'] == 'fasttext'), None)
    memory = (benchmark_targets.memory(r, ft).cell()
              if r['system'] in LINJAX_SYSTEMS else '')
    lines.append(
        f'| {r["corpus"]} | {r["scale"]} | {r["n_train"]} | '
        f'{r["train_tokens"]} | {r["system"]} | {r["fit_s"]:.2f} | '
        f'{r["train_tokens"] / max(r["fit_s"], 1e-9) / 1e6:.2f} | '
        f'{r["peak_rss_mb"]:.0f} | '
        f'{_fmt(_ratio(r["fit_s"], ft and ft.get("fit_raw_s")), ".2f")} | '
        f'{_fmt(_ratio(r["fit_s"], ft and ft["fit_s"]), ".2f")} | '
        f'{_fmt(_ratio(r["peak_rss_mb"], ft and ft["peak_rss_mb"]), ".2f")} | '
        f'{memory} |')
  return '\n'.join(lines)


def _targets_text() -> str:
  t = benchmark_targets
  return (f'Targets (issue 11), per corpus: 1 featurisation >= '
          f'{t.FEATURIZE_TOKENS_PER_S / 1e6:g} M training tokens/s (<= '
          f'{t.SMALL_FEATURIZE_S:g} s under {t.SMALL_CORPUS_TOKENS:,} '
          f'tokens); 2 fit_s <= fastText fit_raw_s (raw text to model) and <= '
          f'scikit-learn SGD fit_s where that is > {t.SKLEARN_FLOOR_S:g} s, '
          f'judged cold (linjax: no compile cache; linjax_warm beside it); 3 '
          f'peak RSS <= {t.MEMORY_FACTOR:g}x fastText; 4 accuracy and '
          f'macro-F1 >= best peer - {100 * t.QUALITY_SLACK:g} points.')


def report(rows: Sequence[dict], threads: int, repeat: int = 1) -> str:
  """The Markdown tables with a header naming the machine."""
  ok = [r for r in rows if 'machine' in r]
  head = ''
  if ok:
    m, r = ok[0]['machine'], ok[0]
    head = (f'Benchmark of {r.get("date")}: {m["platform"]}, '
            f'{m["cpus_usable"]}/{m["cpu_count"]} CPUs usable, '
            f'{m["memory_gb"]} GB, Python {m["python"]}, JAX '
            f'{r.get("jax_version")} ({r.get("jax_backend")}, '
            f'{r.get("device_kind")}), {threads} threads per system, load '
            f'average {m.get("load_avg_1m")} at the start; times are '
            f'{"the median of %d runs" % repeat if repeat > 1 else "one run"}'
            '.\n\n'
            'Deltas are against the best peer on that corpus (points); '
            'ratios against fastText ("raw": its fit_raw_s, from raw text, '
            'writing its tokenised input file included). Peak RSS is the '
            'whole child process; "import RSS" is its peak after imports, '
            'before any data.\n\n')
  text = head + main_table(rows)
  if any('phases' in r for r in _main_rows(rows)):
    text += '\n\nlinjax\'s phases (seconds):\n\n' + phases_table(rows)
  if any('targets' in c for c in compare(rows)):
    text += '\n\n' + _targets_text() + '\n\n' + targets_table(rows)
  if any(r.get('run') == 'scaling' for r in rows):
    text += '\n\nScaling (training split replicated, test unchanged):\n\n'
    text += scaling_table(rows)
  return text + '\n'
