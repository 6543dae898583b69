r"""Compare config variants on validation splits carved from training data.

  python -m benchmarks.compare_configs --data_dir=../shared/data \
      [--corpora=healthtweets,fortunes] [--splits=3] [--val_fraction=0.15] \
      --variants='features.min_df=1;train.epochs=4,optimizer.learning_rate=24' \
      [--peers=sklearn_sgd,fasttext] [--out=FILE.jsonl]

How the defaults in experiments/configs/default.py were chosen, and how to
check a change to them without touching a test split: each corpus's
``train.tsv`` is split ``--splits`` times (stratified, split seeds 0, 1, ...)
into train and ``--val_fraction`` validation; the default config and every
variant (``;``-separated, each a ``,``-separated list of ``section.key=value``
overrides of the default) are trained on the train part and scored on the
validation part. The table gives mean validation accuracy and macro-F1 and
the paired difference to the default (mean, min and max over the splits, in
points). ``--peers`` adds the benchmark's peers (benchmarks/peers.py:
sklearn_sgd, fasttext, sklearn_lbfgs), each run exactly as the benchmark runs
it, on the same splits, with the same paired deltas to linjax's default: the
best peer differs by corpus (fastText on sms_spam's test split), so a default
is judged against each. ``--sklearn_sgd`` is short for
``--peers=sklearn_sgd``. ``test.tsv`` is never read. Each score is logged as it comes
(a long run can be read early) and ``--out`` is rewritten after every
corpus. A ``train.loss=sigmoid`` variant trains one-vs-rest on one-hot
labels (scikit-learn SGD's formulation) and predicts the top score.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from benchmarks import config_overrides
from linjax.cli import config_check

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags; defined only when run as a program, so that tests
  and other tools can import this module beside benchmarks.benchmark (which
  defines --data_dir too)."""
  flags.DEFINE_string('data_dir', None,
                      'Folder of corpora, each NAME/train.tsv.')
  flags.DEFINE_list('corpora', [],
                    'Corpora to use; empty: all in --data_dir.')
  flags.DEFINE_integer('splits', 3,
                       'Validation splits per corpus (seeds 0..).')
  flags.DEFINE_float('val_fraction', 0.15, 'Validation share of train.tsv.')
  flags.DEFINE_string('variants', '', "';'-separated variants, each ','-"
                      "separated section.key=value overrides of the default.")
  flags.DEFINE_list('peers', [], 'Also score these peers of '
                    'benchmarks/peers.py (sklearn_sgd, fasttext, '
                    'sklearn_lbfgs; pip install -e ".[bench]").')
  flags.DEFINE_bool('sklearn_sgd', False, 'Short for --peers=sklearn_sgd.')
  flags.DEFINE_string('out', '',
                      'JSONL file: one row per (corpus, variant).')


SKLEARN = 'sklearn_sgd'


def chosen_peers(names: Sequence[str], sklearn_sgd: bool) -> list[str]:
  """The peers to score, in order, without repeats; checked before any work.

  Raises:
    config_check.ConfigError: a name is no peer of benchmarks/peers.py, or
      its package is not installed (naming the pip package).
  """
  from benchmarks import peers  # pylint: disable=g-import-not-at-top
  chosen = list(dict.fromkeys(list(names) + ([SKLEARN] if sklearn_sgd else [])))
  for name in chosen:
    if name not in peers.PEERS:
      raise config_check.ConfigError(
          f'--peers: no peer {name!r}; choose from {", ".join(peers.PEERS)}')
    missing = peers.missing_package(name)
    if missing:
      raise config_check.ConfigError(
          f'--peers {name}: its package is not installed (pip install '
          f'{missing}, or pip install -e ".[bench]")')
  return chosen


def parse_variants(spec: str, base) -> list[tuple[str, object]]:
  """[(name, RunOptions)]: 'default' first, then each variant of ``spec``."""
  variants = [('default', config_overrides.apply_overrides(base, [],
                                                           '--variants'))]
  for variant in filter(None, (v.strip() for v in spec.split(';'))):
    variants.append((variant, config_overrides.apply_overrides(
        base, variant.split(','), '--variants')))
  return variants


def _score_linjax(options, train_texts, train_y, val_texts, val_y,
                  num_classes, cache: dict) -> tuple[float, float]:
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  from linjax.text.featurizer import Featurizer  # pylint: disable=g-import-not-at-top
  key = json.dumps(options.features.to_dict(), sort_keys=True)
  if key not in cache:  # variants of training share the features
    featurizer = Featurizer.from_options(options.features)
    cache[key] = (featurizer.fit_transform(train_texts),
                  featurizer.transform(val_texts))
  x, val_x = cache[key]
  if losses.get_loss(options.training.loss).multi_label:
    # A multi-hot loss (sigmoid: one-vs-rest) on one label each.
    train_y = np.eye(num_classes, dtype=np.uint8)[train_y]
  result = training.fit(
      x, train_y, num_classes, optimizer=options.optimizer,
      training=dataclasses.replace(options.training, checkpoint_every=0))
  pred = np.asarray(scoring.predict_logits(result.params, val_x)).argmax(-1)
  return (metrics.accuracy(val_y, pred),
          metrics.macro_f1(val_y, pred, num_classes))


def _score_peer(name: str, train_texts, train_y, val_texts, val_y,
                num_classes) -> tuple[float, float]:
  """A peer of benchmarks/peers.py, run as the benchmark runs it (2 threads).

  Labels go to the peer as the strings of their ids; its predictions come
  back as such strings.
  """
  from benchmarks import peers  # pylint: disable=g-import-not-at-top
  from linjax.analysis import metrics  # pylint: disable=g-import-not-at-top
  names = [str(v) for v in train_y]
  result = peers.PEERS[name](peers.Corpus(list(train_texts), names),
                             peers.Corpus(list(val_texts),
                                          ['0'] * len(val_texts)), 2)
  pred = np.asarray([int(p) for p in result.predictions])
  return (metrics.accuracy(val_y, pred),
          metrics.macro_f1(val_y, pred, num_classes))


def _log_score(corpus: str, seed: int, name: str, score) -> None:
  logging.info('%s split %d  %-40s accuracy %.4f  macro-F1 %.4f', corpus,
               seed, name, *score)


def compare(corpus_dir: Path, variants, splits: int, val_fraction: float,
            peer_names: Sequence[str] = ()) -> list[dict]:
  """One row per variant, then per peer: mean scores, paired deltas to the
  default."""
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  ds = data.read_corpus(corpus_dir / 'train.tsv')
  label_map = data.LabelMap.fit(ds.labels)
  y = label_map.encode(ds.labels)
  names = [name for name, _ in variants] + list(peer_names)
  scores = {name: [] for name in names}
  for seed in range(splits):
    keep, held = data.stratified_split(y, val_fraction, seed)
    train_texts = [ds.texts[i] for i in keep]
    val_texts = [ds.texts[i] for i in held]
    cache = {}
    for name, options in variants:
      scores[name].append(_score_linjax(options, train_texts, y[keep],
                                        val_texts, y[held],
                                        label_map.num_classes, cache))
      _log_score(corpus_dir.name, seed, name, scores[name][-1])
    for peer in peer_names:
      scores[peer].append(_score_peer(peer, train_texts, y[keep], val_texts,
                                      y[held], label_map.num_classes))
      _log_score(corpus_dir.name, seed, peer, scores[peer][-1])
  base = np.asarray(scores['default'])
  rows = []
  for name in names:
    s = np.asarray(scores[name])
    delta = 100 * (s[:, 0] - base[:, 0])
    rows.append(dict(corpus=corpus_dir.name, variant=name, splits=splits,
                     val_fraction=val_fraction,
                     accuracy=float(s[:, 0].mean()),
                     macro_f1=float(s[:, 1].mean()),
                     d_acc_pts=float(delta.mean()),
                     d_acc_min=float(delta.min()),
                     d_acc_max=float(delta.max()),
                     d_f1_pts=float(100 * (s[:, 1] - base[:, 1]).mean()),
                     per_split=s.tolist()))
  return rows


def format_table(rows: Sequence[dict]) -> str:
  lines = ['| corpus | variant | accuracy | macro-F1 | Δacc pts (min..max) | '
           'ΔF1 pts |', '|' + ' --- |' * 6]
  for r in rows:
    lines.append(f'| {r["corpus"]} | {r["variant"]} | {r["accuracy"]:.4f} | '
                 f'{r["macro_f1"]:.4f} | {r["d_acc_pts"]:+.2f} '
                 f'({r["d_acc_min"]:+.2f}..{r["d_acc_max"]:+.2f}) | '
                 f'{r["d_f1_pts"]:+.2f} |')
  return '\n'.join(lines)


def main(argv):
  with config_check.runner_main(argv, data_dir=FLAGS.data_dir):
    from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
    data_dir = Path(FLAGS.data_dir).expanduser()
    if not data_dir.is_dir():
      raise config_check.ConfigError(f'--data_dir: no such folder: '
                                     f'{FLAGS.data_dir}')
    available = sorted(p.name for p in data_dir.glob('*')
                       if (p / 'train.tsv').is_file())
    corpora = list(FLAGS.corpora) or available
    for c in corpora:
      if c not in available:
        raise config_check.ConfigError(
            f'--corpora: no {c}/train.tsv in {data_dir}; found: '
            f'{", ".join(available) or "none"}')
    if not corpora:
      raise config_check.ConfigError(f'--data_dir: no NAME/train.tsv in '
                                     f'{data_dir}')
    if FLAGS.splits < 1:
      raise config_check.ConfigError(f'--splits must be >= 1, got '
                                     f'{FLAGS.splits}')
    if not 0 < FLAGS.val_fraction < 1:
      raise config_check.ConfigError(f'--val_fraction must be in (0, 1), got '
                                     f'{FLAGS.val_fraction}')
    out_folder = Path(FLAGS.out).expanduser().parent
    if FLAGS.out and not out_folder.is_dir():
      raise config_check.ConfigError(f'--out: no such folder: {out_folder}')
    variants = parse_variants(FLAGS.variants, default.get_config())
    peer_names = chosen_peers(FLAGS.peers, FLAGS.sklearn_sgd)
    rows = []
    for corpus in corpora:
      rows += compare(data_dir / corpus, variants, FLAGS.splits,
                      FLAGS.val_fraction, peer_names)
      if FLAGS.out:  # after every corpus, so a long run can be read early
        with open(FLAGS.out, 'w', encoding='utf-8') as f:
          f.writelines(json.dumps(r) + '\n' for r in rows)
    print(format_table(rows))


if __name__ == '__main__':
  define_flags()
  app.run(main)
