"""Issue 20's targets for the main job, judged yes/no from the benchmark's rows.

Pure functions of the rows `benchmarks.benchmark` writes for the
command-line systems (benchmarks/cli_systems.py: ``linjax_cli``,
``fasttext_cli``, ``jax_floor``; ``run`` 'cli' at every scale, 'cli_lean'
for the out-of-core memory check) and, for quality, the library and peer
rows of the main run (``run`` 'main'):

1. time above the floor (1x): the runner's warm wall minus the JAX floor's
   wall is at most fastText's whole command-line job, and the cold wall at
   most `COLD_SLACK_S` more than the warm one.
2. at scale (every scale > 1): the warm wall at most fastText's command
   line; the peak RSS at most the floor's RSS plus `MEMORY_FACTOR` x
   fastText's; out of core (the 'cli_lean' rows: gradient check and
   checkpoints off in both), the largest scale's peak RSS at most
   `STREAMED_FACTOR` x the 1x run's.
3. quality (1x): test accuracy and macro-F1 each at least the library
   path's (the ``linjax`` row) minus `LIBRARY_SLACK` and the best peer's
   minus `PEER_SLACK` (fractions: 0.001 is 0.1 point).
5. featurisation: the runner's featurise phase at least
   `benchmark_targets.FEATURIZE_TOKENS_PER_S` training tokens per second
   where the corpus has more than `benchmark_targets.SMALL_CORPUS_TOKENS`
   (H-feat's own numbers: benchmarks/featurize_speed.py).

Missing or failed rows give ``met`` None (not judged), naming what is
missing.
"""

from __future__ import annotations

from typing import Sequence

from benchmarks import benchmark_targets
from benchmarks import peers
from benchmarks.benchmark_targets import Verdict

COLD_SLACK_S = 1.0
MEMORY_FACTOR = 1.5
STREAMED_FACTOR = 1.5
LIBRARY_SLACK = 0.001
PEER_SLACK = 0.003
TARGETS = ('1 time', '1 cold', '2 time', '2 memory', '2 streamed',
           '3 quality', '5 featurise')


def _ok(row) -> bool:
  return row is not None and 'error' not in row


def _find(rows, corpus, system, scale=1, run='cli'):
  found = [r for r in rows if r.get('corpus') == corpus and
           r.get('system') == system and r.get('scale', 1) == scale and
           r.get('run') == run]
  return found[0] if found and _ok(found[0]) else None


def time_above_floor(runner, floor, fasttext) -> Verdict:
  """Target 1: warm wall - floor wall <= fastText's command-line wall."""
  if not (_ok(runner) and _ok(floor) and _ok(fasttext)):
    return Verdict(None, 'needs linjax_cli, jax_floor and fasttext_cli rows')
  above = runner['warm_s'] - floor['wall_s']
  return Verdict(above <= fasttext['cli_s'],
                 f'{above:.2f} s above the floor vs fastText '
                 f'{fasttext["cli_s"]:.2f} s, {above / fasttext["cli_s"]:.2f}x')


def cold_over_warm(runner) -> Verdict:
  """Target 1: cold wall <= warm wall + `COLD_SLACK_S`."""
  if not _ok(runner):
    return Verdict(None, 'needs a linjax_cli row')
  extra = runner['cold_s'] - runner['warm_s']
  return Verdict(extra <= COLD_SLACK_S,
                 f'cold {runner["cold_s"]:.2f} s = warm + {extra:.2f} s')


def scale_time(runner, fasttext) -> Verdict:
  """Target 2: warm wall <= fastText's command-line wall."""
  if not (_ok(runner) and _ok(fasttext)):
    return Verdict(None, 'needs linjax_cli and fasttext_cli rows')
  return Verdict(runner['warm_s'] <= fasttext['cli_s'],
                 f'{runner["warm_s"]:.2f} vs {fasttext["cli_s"]:.2f} s, '
                 f'{runner["warm_s"] / fasttext["cli_s"]:.2f}x')


def scale_memory(runner, floor, fasttext) -> Verdict:
  """Target 2: peak RSS <= floor RSS + `MEMORY_FACTOR` x fastText's."""
  if not (_ok(runner) and _ok(floor) and _ok(fasttext)):
    return Verdict(None, 'needs linjax_cli, jax_floor and fasttext_cli rows')
  limit = floor['peak_rss_mb'] + MEMORY_FACTOR * fasttext['peak_rss_mb']
  return Verdict(runner['peak_rss_mb'] <= limit,
                 f'{runner["peak_rss_mb"]:.0f} MB vs {limit:.0f} MB '
                 f'({floor["peak_rss_mb"]:.0f} + {MEMORY_FACTOR:g} x '
                 f'{fasttext["peak_rss_mb"]:.0f})')


def streamed_memory(big, one) -> Verdict:
  """Target 2, out of core: peak RSS <= `STREAMED_FACTOR` x the 1x run's."""
  if not (_ok(big) and _ok(one)):
    return Verdict(None, 'needs the lean 1x and large-scale linjax_cli rows')
  if not big.get('streamed'):
    return Verdict(None, 'the large run was not streamed')
  ratio = big['peak_rss_mb'] / one['peak_rss_mb']
  return Verdict(ratio <= STREAMED_FACTOR,
                 f'{big["peak_rss_mb"]:.0f} vs {one["peak_rss_mb"]:.0f} MB, '
                 f'{ratio:.2f}x')


def quality(runner, library, peer_rows: Sequence[dict]) -> Verdict:
  """Target 3: accuracy and macro-F1 against the library and best peer."""
  others = [p for p in peer_rows if p.get('system') in peers.PEERS and _ok(p)]
  if not (_ok(runner) and _ok(library) and others):
    return Verdict(None, 'needs linjax_cli, linjax and peer rows')
  d_lib = min(runner['accuracy'] - library['accuracy'],
              runner['macro_f1'] - library['macro_f1'])
  d_acc = runner['accuracy'] - max(p['accuracy'] for p in others)
  d_f1 = runner['macro_f1'] - max(p['macro_f1'] for p in others)
  # Rounded to the 4 decimals the rows keep, so the slack exactly passes.
  met = (round(d_lib, 4) >= -LIBRARY_SLACK and
         min(round(d_acc, 4), round(d_f1, 4)) >= -PEER_SLACK)
  return Verdict(met, f'vs library {100 * d_lib:+.2f}; vs best peer acc '
                 f'{100 * d_acc:+.2f}, F1 {100 * d_f1:+.2f} pts')


def featurise(runner) -> Verdict:
  """Target 5 from the runner's featurisation seconds (corpora over
  `benchmark_targets.SMALL_CORPUS_TOKENS` training tokens only)."""
  if not _ok(runner):
    return Verdict(None, 'needs a linjax_cli row')
  if (runner.get('train_tokens') or 0) <= benchmark_targets.SMALL_CORPUS_TOKENS:
    return Verdict(None, f'{runner.get("train_tokens") or 0:,} tokens: not '
                   'judged')
  return benchmark_targets.featurise(dict(
      phases=dict(featurize_s=runner.get('featurize_seconds')),
      train_tokens=runner.get('train_tokens')))


def judge(rows: Sequence[dict]) -> list[dict]:
  """Every corpus and scale of the command-line runs: {corpus, scale,
  verdicts: {target: Verdict}} (targets that do not apply are absent)."""
  out = []
  cli = [r for r in rows if r.get('run') == 'cli' and
         r.get('system') == 'linjax_cli']
  for runner in cli:
    corpus, scale = runner['corpus'], runner.get('scale', 1)
    floor = _find(rows, corpus, 'jax_floor')
    fasttext = _find(rows, corpus, 'fasttext_cli', scale)
    verdicts = {}
    if scale == 1:
      main = [r for r in rows if r.get('corpus') == corpus and
              r.get('run', 'main') == 'main']
      verdicts['1 time'] = time_above_floor(runner, floor, fasttext)
      verdicts['1 cold'] = cold_over_warm(runner)
      verdicts['3 quality'] = quality(
          runner, _find(main, corpus, 'linjax', run='main'), main)
    else:
      verdicts['2 time'] = scale_time(runner, fasttext)
      verdicts['2 memory'] = scale_memory(runner, floor, fasttext)
    verdicts['5 featurise'] = featurise(runner)
    out.append(dict(corpus=corpus, scale=scale, verdicts=verdicts))
  lean = [r for r in rows if r.get('run') == 'cli_lean' and _ok(r)]
  for big in lean:
    if big.get('scale', 1) == 1:
      continue
    one = _find(rows, big['corpus'], 'linjax_cli', 1, run='cli_lean')
    out.append(dict(corpus=big['corpus'], scale=big['scale'], lean=True,
                    verdicts={'2 streamed': streamed_memory(big, one)}))
  return out
