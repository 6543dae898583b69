"""Markdown report of the benchmark's rows: targets, main and scaling tables.

Pure functions of the rows that `benchmarks.benchmark` writes (one dict per
corpus and system). Targets (per corpus, for the linjax systems): accuracy and
macro-F1 >= best peer - 0.5 points (`ACCURACY_SLACK`), fit_s <= fastText's,
peak RSS <= `MEMORY_FACTOR` x fastText's.
"""

from __future__ import annotations

from typing import Sequence

from benchmarks import peers

LINJAX_SYSTEMS = ('linjax', 'linjax_warm', 'linjax_sweep')
ACCURACY_SLACK = 0.005  # targets: within 0.5 points of the best peer.
MEMORY_FACTOR = 2.0


def _ok(row: dict) -> bool:
  return 'error' not in row


def _fmt(v, spec: str = '.4f') -> str:
  return '-' if v is None else format(v, spec)


def _ratio(a, b):
  return a / b if a is not None and b else None


def compare(rows: Sequence[dict]) -> list[dict]:
  """Per main row: deltas vs the best peer, ratios vs fastText, targets."""
  out = []
  main = [r for r in rows if r.get('run', 'main') == 'main']
  for r in main:
    same = [p for p in main if p['corpus'] == r['corpus'] and _ok(p)]
    peer_rows = [p for p in same if p['system'] in peers.PEERS]
    ft = next((p for p in peer_rows if p['system'] == 'fasttext'), None)
    c = dict(row=r)
    if _ok(r) and peer_rows:
      best_acc = max(p['accuracy'] for p in peer_rows)
      best_f1 = max(p['macro_f1'] for p in peer_rows)
      c['d_acc'] = 100 * (r['accuracy'] - best_acc)
      c['d_f1'] = 100 * (r['macro_f1'] - best_f1)
      c['targets'] = dict(acc=r['accuracy'] >= best_acc - ACCURACY_SLACK,
                          f1=r['macro_f1'] >= best_f1 - ACCURACY_SLACK)
    if _ok(r) and ft:
      c['fit_ratio'] = _ratio(r['fit_s'], ft['fit_s'])
      c['mem_ratio'] = _ratio(r['peak_rss_mb'], ft['peak_rss_mb'])
      c.setdefault('targets', {})
      c['targets'].update(fit=c['fit_ratio'] <= 1.0,
                          mem=c['mem_ratio'] <= MEMORY_FACTOR)
    out.append(c)
  return out


def _targets(c: dict) -> str:
  if c['row']['system'] not in LINJAX_SYSTEMS or 'targets' not in c:
    return ''
  return ' '.join(f'{k}:{"yes" if v else "NO"}'
                  for k, v in c['targets'].items())


def main_table(rows: Sequence[dict]) -> str:
  """Markdown: one line per (corpus, system) of the main run."""
  lines = [
      '| corpus | system | accuracy | macro-F1 | fit s | predict s | '
      'peak RSS MB | import RSS MB | Δacc pts | ΔF1 pts | fit / fastText | '
      'mem / fastText | targets (linjax) |',
      '|' + ' --- |' * 13]
  for c in compare(rows):
    r = c['row']
    if not _ok(r):
      lines.append(f'| {r["corpus"]} | {r["system"]} | error: {r["error"]} |'
                   + ' |' * 10)
      continue
    lines.append(
        f'| {r["corpus"]} | {r["system"]} | {_fmt(r["accuracy"])} | '
        f'{_fmt(r["macro_f1"])} | {_fmt(r["fit_s"], ".2f")} | '
        f'{_fmt(r["predict_s"], ".2f")} | {_fmt(r["peak_rss_mb"], ".0f")} | '
        f'{_fmt(r.get("import_rss_mb"), ".0f")} | '
        f'{_fmt(c.get("d_acc"), "+.2f")} | {_fmt(c.get("d_f1"), "+.2f")} | '
        f'{_fmt(c.get("fit_ratio"), ".2f")} | '
        f'{_fmt(c.get("mem_ratio"), ".2f")} | {_targets(c)} |')
  return '\n'.join(lines)


def scaling_table(rows: Sequence[dict]) -> str:
  """Markdown: fit time and peak memory against training-set size."""
  rows = [r for r in rows if r.get('run') == 'scaling']
  lines = ['| corpus | scale | train docs | train tokens | system | fit s | '
           'M tokens/s | peak RSS MB | fit / fastText | mem / fastText |',
           '|' + ' --- |' * 10]
  for r in rows:
    if not _ok(r):
      lines.append(f'| {r["corpus"]} | {r["scale"]} | | | {r["system"]} | '
                   f'error: {r["error"]} |' + ' |' * 4)
      continue
    ft = next((p for p in rows if p['scale'] == r['scale'] and _ok(p)
               and p['system'] == 'fasttext'), None)
    lines.append(
        f'| {r["corpus"]} | {r["scale"]} | {r["n_train"]} | '
        f'{r["train_tokens"]} | {r["system"]} | {r["fit_s"]:.2f} | '
        f'{r["train_tokens"] / max(r["fit_s"], 1e-9) / 1e6:.2f} | '
        f'{r["peak_rss_mb"]:.0f} | '
        f'{_fmt(_ratio(r["fit_s"], ft and ft["fit_s"]), ".2f")} | '
        f'{_fmt(_ratio(r["peak_rss_mb"], ft and ft["peak_rss_mb"]), ".2f")} |')
  return '\n'.join(lines)


def report(rows: Sequence[dict], threads: int, repeat: int = 1) -> str:
  """Both Markdown tables with a header naming the machine."""
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
            'ratios against fastText. Targets: accuracy and macro-F1 >= best '
            'peer - 0.5 points, fit_s <= fastText, peak RSS <= 2x fastText. '
            'Peak RSS is the whole child process; "import RSS" is its peak '
            'after imports, before any data.\n\n')
  text = head + main_table(rows)
  if any(r.get('run') == 'scaling' for r in rows):
    text += '\n\nScaling (training split replicated, test unchanged):\n\n'
    text += scaling_table(rows)
  return text + '\n'
