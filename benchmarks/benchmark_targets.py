"""Issue 11's targets 1-4, judged yes/no per corpus from the benchmark's rows.

Pure functions of the rows `benchmarks.benchmark` writes (one dict per corpus
and system; benchmarks/benchmark_worker.py fills them). For a linjax row
and the peers' rows of the same corpus:

1. featurise: at least `FEATURIZE_TOKENS_PER_S` training tokens per second
   where the corpus has more than `SMALL_CORPUS_TOKENS` training tokens,
   else at most `SMALL_FEATURIZE_S` seconds (``phases.featurize_s``).
2. fit: ``fit_s`` at most fastText's ``fit_raw_s`` (raw text to model,
   writing its tokenised input file included), and at most scikit-learn
   SGD's ``fit_s`` wherever that one is over `SKLEARN_FLOOR_S`. Judged on
   the cold row (``linjax``: no compile cache); a warm row gets the same
   verdict beside it. The stretch, fastText's ``fit_s`` (its prepared file),
   is reported but is not a target.
3. memory: peak RSS at most `MEMORY_FACTOR` x fastText's (also per scale of
   the scaling run).
4. quality: accuracy and macro-F1 each at least the best peer's minus
   `QUALITY_SLACK` (a fraction: 0.003 is 0.3 points).

A verdict is a `Verdict`: ``met`` True / False, or None when a row it needs
is missing or failed (then ``detail`` says which).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from benchmarks import peers

FEATURIZE_TOKENS_PER_S = 4e6
SMALL_CORPUS_TOKENS = 500_000
SMALL_FEATURIZE_S = 0.1
SKLEARN_FLOOR_S = 0.5
MEMORY_FACTOR = 1.5
QUALITY_SLACK = 0.003
TARGETS = ('featurise', 'fit', 'memory', 'quality')


class Verdict(NamedTuple):
  """One target on one row: met (True/False/None: not judged) and why."""
  met: bool | None
  detail: str

  def cell(self) -> str:
    word = {True: 'yes', False: 'NO', None: 'n/a'}[self.met]
    return f'{word} ({self.detail})'


def _ok(row: dict | None) -> bool:
  return row is not None and 'error' not in row


def _peer(rows: Sequence[dict], system: str) -> dict | None:
  found = [r for r in rows if r.get('system') == system]
  return found[0] if found and _ok(found[0]) else None


def featurise(row: dict) -> Verdict:
  """Target 1 from the row's training tokens and ``phases.featurize_s``."""
  seconds = row.get('phases', {}).get('featurize_s')
  tokens = row.get('train_tokens')
  if seconds is None or not tokens:
    return Verdict(None, 'no featurisation phase in the row')
  rate = tokens / max(seconds, 1e-9)
  if tokens > SMALL_CORPUS_TOKENS:
    return Verdict(rate >= FEATURIZE_TOKENS_PER_S,
                   f'{rate / 1e6:.2f} M tokens/s, target '
                   f'{FEATURIZE_TOKENS_PER_S / 1e6:g}')
  return Verdict(seconds <= SMALL_FEATURIZE_S,
                 f'{seconds:.2f} s for {tokens:,} tokens, target '
                 f'<= {SMALL_FEATURIZE_S:g} s')


def fit(row: dict, peer_rows: Sequence[dict]) -> Verdict:
  """Target 2: fit_s against fastText's fit_raw_s and a slow sklearn SGD."""
  ft, sgd = _peer(peer_rows, 'fasttext'), _peer(peer_rows, 'sklearn_sgd')
  if ft is None or ft.get('fit_raw_s') is None:
    return Verdict(None, 'no fastText fit_raw_s')
  limit, against = ft['fit_raw_s'], 'fastText raw'
  if sgd is None:
    return Verdict(None, 'no scikit-learn SGD row')
  if sgd['fit_s'] > SKLEARN_FLOOR_S and sgd['fit_s'] < limit:
    limit, against = sgd['fit_s'], 'sklearn SGD'
  return Verdict(row['fit_s'] <= limit,
                 f'{row["fit_s"]:.2f} s vs {limit:.2f} s {against}, '
                 f'{row["fit_s"] / limit:.2f}x')


def fit_stretch(row: dict, peer_rows: Sequence[dict]) -> Verdict:
  """The stretch of target 2: fit_s against fastText's prepared-file fit_s."""
  ft = _peer(peer_rows, 'fasttext')
  if ft is None:
    return Verdict(None, 'no fastText row')
  return Verdict(row['fit_s'] <= ft['fit_s'],
                 f'{row["fit_s"] / ft["fit_s"]:.2f}x fastText fit_s')


def memory(row: dict, fasttext_row: dict | None) -> Verdict:
  """Target 3: peak RSS against `MEMORY_FACTOR` x fastText's."""
  if not _ok(fasttext_row):
    return Verdict(None, 'no fastText row')
  ratio = row['peak_rss_mb'] / fasttext_row['peak_rss_mb']
  return Verdict(ratio <= MEMORY_FACTOR,
                 f'{ratio:.2f}x fastText, target <= {MEMORY_FACTOR:g}x')


def quality(row: dict, peer_rows: Sequence[dict]) -> Verdict:
  """Target 4: accuracy and macro-F1 against the best peer's, each."""
  others = [p for p in peer_rows if p.get('system') in peers.PEERS
            and _ok(p)]
  if not others:
    return Verdict(None, 'no peer row')
  d_acc = row['accuracy'] - max(p['accuracy'] for p in others)
  d_f1 = row['macro_f1'] - max(p['macro_f1'] for p in others)
  # Rounded to the 4 decimals the rows keep, so -0.3 points exactly passes.
  met = min(round(d_acc, 4), round(d_f1, 4)) >= -QUALITY_SLACK
  return Verdict(met, f'acc {100 * d_acc:+.2f}, F1 {100 * d_f1:+.2f} pts')


def judge(row: dict, corpus_rows: Sequence[dict]) -> dict[str, Verdict]:
  """Targets 1-4 (and the fit stretch) of one linjax row of the main run.

  Args:
    row: a linjax row (no ``error``).
    corpus_rows: every main-run row of the same corpus (peers included).

  Returns:
    {'featurise', 'fit', 'memory', 'quality', 'fit_stretch': Verdict}.
  """
  return dict(featurise=featurise(row), fit=fit(row, corpus_rows),
              memory=memory(row, _peer(corpus_rows, 'fasttext')),
              quality=quality(row, corpus_rows),
              fit_stretch=fit_stretch(row, corpus_rows))
