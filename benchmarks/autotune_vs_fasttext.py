r"""linjax's autotune against fastText's, same budget, same validation split.

  python -m benchmarks.autotune_vs_fasttext --data_dir=../shared/data \
      --time_budget=60 --threads=2 --out=/tmp/autotune.jsonl

For each shared TSV corpus (DIR/NAME/{train,test}.tsv): `experiments.autotune`
with the default config (validation split: ``data.val_fraction`` of train,
stratified, as `experiments.train` carves it), then fastText's autotune
(`train_supervised(autotuneValidationFile=..., autotuneDuration=...)`) on
the same training documents with that same validation split, tokenised as
in benchmarks/peers.py. Each system runs in its own child process; a row has
the best validation accuracy, the chosen model's test accuracy, the wall
seconds of the whole command (reading the files excluded for linjax, fastText
reads its own) and the peak RSS. Prints a markdown table.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'Folder of NAME/{train,test}.tsv.')
flags.DEFINE_list('corpora', ['fortunes', 'healthtweets', 'manpages',
                              'sms_spam'], 'Corpora to run.')
flags.DEFINE_float('time_budget', 60.0, 'Seconds for each autotune.')
flags.DEFINE_integer('threads', 2, 'fastText threads (linjax: XLA\'s own).')
flags.DEFINE_string('out', None, 'JSONL file of the rows (optional).')
flags.DEFINE_string('workdir', None, 'Where the runs write (default: a '
                    'temporary folder).')
flags.DEFINE_string('worker', '', 'Internal: run one fastText autotune.')
flags.DEFINE_string('corpus', '', 'Internal: the corpus of --worker.')

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(train: str, test: str):
  from linjax.cli.configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.data.train, config.data.test = train, test
  return config


def fasttext_worker(corpus: pathlib.Path, budget: float, threads: int) -> dict:
  """fastText's autotune on the split `experiments.train` would use."""
  import fasttext  # pylint: disable=g-import-not-at-top
  from benchmarks import peers  # pylint: disable=g-import-not-at-top
  from linjax.cli import train as train_runner  # pylint: disable=g-import-not-at-top
  fasttext.FastText.eprint = lambda *a, **k: None
  splits = train_runner.load_splits(_config(str(corpus / 'train.tsv'),
                                            str(corpus / 'test.tsv')))
  names = splits.label_map.names
  folder = tempfile.mkdtemp(prefix='ft_autotune_')
  files = {}
  for part, texts, ys in (('train', splits.train_texts, splits.train_y),
                          ('val', splits.val_texts, splits.val_y)):
    files[part] = os.path.join(folder, f'{part}.txt')
    with open(files[part], 'w', encoding='utf-8') as f:
      for text, y in zip(texts, ys):
        f.write(peers.fasttext_line(names[y], text).replace('\n', ' ') + '\n')
  # fastText's autotune sometimes stops on a diverged trial ('Encountered
  # NaN'); it is then run again, counted in ``failed_tries``.
  failed = 0
  while True:
    start = time.perf_counter()
    try:
      model = fasttext.train_supervised(
          input=files['train'], autotuneValidationFile=files['val'],
          autotuneDuration=int(round(budget)), thread=threads, verbose=0)
      break
    except RuntimeError as e:
      if 'NaN' not in str(e) or failed >= 4:
        raise
      failed += 1
  seconds = time.perf_counter() - start
  _, val_precision, _ = model.test(files['val'])

  def accuracy(texts, ys):
    hits = 0
    for text, y in zip(texts, ys):
      label = model.predict(' '.join(peers.tokenize(text)).replace('\n', ' '))[0]
      hits += bool(label) and label[0][len('__label__'):] == names[y]
    return hits / max(len(texts), 1)

  args = model.f.getArgs()
  return dict(system='fasttext_autotune', val_accuracy=float(val_precision),
              test_accuracy=accuracy(splits.test_texts, splits.test_y),
              seconds=seconds, failed_tries=failed,
              chosen=dict(lr=args.lr, epoch=args.epoch, dim=args.dim,
                          wordNgrams=args.wordNgrams, minCount=args.minCount,
                          bucket=args.bucket, loss=str(args.loss)),
              peak_rss_mb=resource.getrusage(
                  resource.RUSAGE_SELF).ru_maxrss / 1024)


def _linjax(corpus: pathlib.Path, workdir: pathlib.Path, budget: float):
  start = time.perf_counter()
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.autotune',
       f'--config.data.train={corpus / "train.tsv"}',
       f'--config.data.test={corpus / "test.tsv"}',
       f'--time_budget={budget}', f'--workdir={workdir}'],
      cwd=ROOT, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  if proc.returncode:
    raise RuntimeError(f'experiments.autotune failed on {corpus}: '
                       f'{proc.stderr[-2000:]}')
  out = json.loads((workdir / 'autotune.json').read_text())
  best = out['best']
  return dict(system='linjax_autotune', val_accuracy=best['val_accuracy'],
              test_accuracy=out['test_accuracy'],
              seconds=out['total_seconds'], process_seconds=wall,
              trials=len(out['trials']),
              full_data_trials=sum(t['rung'] == out['plan']['rungs'] - 1
                                   for t in out['trials']),
              chosen=dict(lr=best['lr'], l2=best['l2'],
                          epochs=best['epochs']),
              peak_rss_mb=out['peak_rss_mb'])


def _fasttext(corpus: pathlib.Path, budget: float, threads: int):
  proc = subprocess.run(
      [sys.executable, '-m', 'benchmarks.autotune_vs_fasttext',
       '--worker=fasttext', f'--corpus={corpus}', f'--time_budget={budget}',
       f'--threads={threads}'], cwd=ROOT, capture_output=True, text=True,
      check=False)
  if proc.returncode:
    raise RuntimeError(f'fastText autotune failed on {corpus}: '
                       f'{proc.stderr[-2000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  if FLAGS.worker:
    print(json.dumps(fasttext_worker(pathlib.Path(FLAGS.corpus),
                                     FLAGS.time_budget, FLAGS.threads)))
    return
  if not FLAGS.data_dir:
    sys.exit('error: --data_dir is required')
  work = pathlib.Path(FLAGS.workdir or tempfile.mkdtemp(prefix='autotune_'))
  rows = []
  for name in FLAGS.corpora:
    corpus = pathlib.Path(FLAGS.data_dir) / name
    if not (corpus / 'train.tsv').is_file():
      sys.exit(f'error: {corpus / "train.tsv"}: no such file (--data_dir, '
               '--corpora)')
    for row in (_linjax(corpus, work / name, FLAGS.time_budget),
                _fasttext(corpus, FLAGS.time_budget, FLAGS.threads)):
      row.update(corpus=name, time_budget=FLAGS.time_budget,
                 load_average=os.getloadavg()[0])
      rows.append(row)
      print(json.dumps(row), flush=True)
      if FLAGS.out:
        with open(FLAGS.out, 'a', encoding='utf-8') as f:
          f.write(json.dumps(row) + '\n')
  print('\n| corpus | system | best val acc | test acc | wall s | peak RSS MB '
        '| chosen |\n| --- | --- | --- | --- | --- | --- | --- |')
  for r in rows:
    chosen = ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                       for k, v in r['chosen'].items())
    print(f'| {r["corpus"]} | {r["system"]} | {r["val_accuracy"]:.4f} | '
          f'{r["test_accuracy"]:.4f} | {r["seconds"]:.1f} | '
          f'{r["peak_rss_mb"]:.0f} | {chosen} |')


if __name__ == '__main__':
  app.run(main)
