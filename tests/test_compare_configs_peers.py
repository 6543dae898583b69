"""compare_configs' --peers: every benchmark peer on the same validation splits.

A peer's row must be the peer's own validation scores (checked against the
peer run by hand on the same split and scored by scikit-learn's metrics) and
its deltas paired with linjax's default on the same splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from benchmarks import compare_configs
from benchmarks import peers
from linjax.cli import config_check
from linjax.cli.configs import default
from linjax.data import corpus as data

WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'
                   .split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it , . !'.split()


def _write_corpus(path: Path, n: int, seed: int) -> None:
  """n documents of 3 classes; 1 in 4 carries only words of another class,
  so that no system is perfect and the scores can differ."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  lines = ['label\ttext']
  for i in range(n):
    label = names[i % 3]
    source = names[(i + 1) % 3] if i % 4 == 0 else label
    toks = list(rng.choice(WORDS[source], 2)) + list(rng.choice(COMMON, 4))
    rng.shuffle(toks)
    lines.append(f'{label}\t{" ".join(toks)}')
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')


def test_chosen_peers_keeps_order_drops_repeats_and_reads_the_alias():
  assert compare_configs.chosen_peers(['sklearn_sgd'], True) == ['sklearn_sgd']
  assert compare_configs.chosen_peers([], True) == ['sklearn_sgd']
  assert compare_configs.chosen_peers([], False) == []


def test_unknown_peer_is_one_error_naming_the_flag_and_the_choices():
  with pytest.raises(config_check.ConfigError) as err:
    compare_configs.chosen_peers(['fasttxt'], False)
  message = str(err.value)
  assert '--peers' in message and "'fasttxt'" in message
  assert 'sklearn_sgd' in message and 'fasttext' in message


def test_peer_row_is_the_peer_on_the_same_split_paired_with_the_default(
    tmp_path):
  corpus_dir = tmp_path / 'toy'
  _write_corpus(corpus_dir / 'train.tsv', 150, 0)
  variants = compare_configs.parse_variants('', default.get_config())
  rows = compare_configs.compare(corpus_dir, variants, splits=2,
                                 val_fraction=0.3,
                                 peer_names=['sklearn_sgd'])
  assert [r['variant'] for r in rows] == ['default', 'sklearn_sgd']
  base, peer = rows
  # The peer by hand on split seeds 0 and 1, scored by scikit-learn.
  ds = data.read_corpus(corpus_dir / 'train.tsv')
  y = np.asarray(data.LabelMap.fit(ds.labels).encode(ds.labels))
  expected = []
  for seed in range(2):
    keep, held = data.stratified_split(y, 0.3, seed)
    result = peers.run_sklearn_sgd(
        peers.Corpus([ds.texts[i] for i in keep], [str(v) for v in y[keep]]),
        peers.Corpus([ds.texts[i] for i in held], ['0'] * len(held)), 2)
    pred = np.asarray([int(p) for p in result.predictions])
    expected.append((sk_metrics.accuracy_score(y[held], pred),
                     sk_metrics.f1_score(y[held], pred, average='macro')))
  np.testing.assert_allclose(peer['per_split'], expected, atol=1e-6)
  deltas = 100 * (np.asarray(expected)[:, 0] -
                  np.asarray(base['per_split'])[:, 0])
  assert peer['d_acc_pts'] == pytest.approx(deltas.mean())
  assert peer['d_acc_min'] == pytest.approx(deltas.min())
  assert 0.5 < peer['accuracy'] < 1.0  # the mislabelled quarter costs
