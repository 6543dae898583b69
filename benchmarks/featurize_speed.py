r"""Host featurisation speed: linjax's Featurizer against scikit-learn.

Two modes.

**Runner mode** (``--corpora=DIR``): featurisation as the runner does it, on
every corpus folder of DIR (``train.tsv``/``test.tsv``, or ``train.txt``/
``test.txt`` in fastText format): the default ``Featurizer()`` (shapes,
min_df, sublinear TF-IDF, L2), ``fit_transform`` of the training texts then
``transform`` of the test texts, timed as the FIRST call of a fresh process
(cold: the memory, tables and threads are new, as in a run), and again as a
second call (warm). tokens/s counts the words_punct tokens of train + test.
With ``--before=TREE`` (a checkout of an older linjax, e.g. /tmp/before) the
same worker runs against that tree too, alternating before/after round by
round so that both see the same machine load; one JSON line per corpus,
tree and round, then a summary line per corpus and tree (best and median of
the rounds) and a markdown table.

  python -m benchmarks.featurize_speed --corpora=../shared/data \
      [--before=/tmp/before] [--rounds=5] [--only=healthtweets,manpages]

**Single-file mode** (``--data=FILE``): reads a corpus (`linjax.data.read_corpus`), then times, best of --repeat:

  linjax.tokenize   the tokenizer alone over every document
  linjax            Featurizer(ngrams, buckets, min_df=1, shape_ngrams=0,
                    weighting='tf', normalize='none').fit_transform
                    (tokenisation, hashing, n-grams, counts, bucket names)
  linjax.transform  transform only, on the fitted Featurizer
  sklearn           HashingVectorizer(tokenizer=linjax.text.tokenize,
                    ngram_range=(1, ngrams), n_features=buckets,
                    alternate_sign=False, norm=None).transform, i.e. the same
                    tokens and bag of n-grams (not the same hash function)

and prints one JSON line per system with seconds and tokens/s (tokens: the
unigram tokens of the corpus). Single core: run it with nothing else busy.

  python -m benchmarks.featurize_speed \
      --data=../shared/data/healthtweets/train.tsv [--ngrams=2] \
      [--buckets=1048576] [--repeat=5] [--nosklearn]

``--data`` (a file) or ``--corpora`` (a folder) is required: there is no
default corpus.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

_DATA = flags.DEFINE_string(
    'data', None, 'Corpus file to featurise (any format '
    'linjax.data.corpus.read_corpus reads).')
_NGRAMS = flags.DEFINE_integer('ngrams', 2, 'Word n-grams 1..ngrams.')
_BUCKETS = flags.DEFINE_integer('buckets', 2**20, 'Hashing buckets.')
_REPEAT = flags.DEFINE_integer('repeat', 5, 'Timed runs; the best counts.')
_SKLEARN = flags.DEFINE_bool('sklearn', True, 'Also time scikit-learn.')
_CORPORA = flags.DEFINE_string(
    'corpora', None, 'Runner mode: a folder of corpus folders (each with '
    'train.tsv and test.tsv, or train.txt and test.txt).')
_BEFORE = flags.DEFINE_string(
    'before', None, 'Runner mode: also time the linjax of this source tree '
    '(e.g. /tmp/before), alternating with this one.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Runner mode: fresh processes '
                               'per corpus and tree.')
_ONLY = flags.DEFINE_list('only', [], 'Runner mode: these corpora only.')
_WORKER = flags.DEFINE_string('worker', None, 'Internal: time one corpus '
                              'folder in this process.')


def _fail(message: str) -> None:
  sys.exit(f'error: {message}')


def _check_flags() -> None:
  """Exits with one line naming the first bad flag."""
  if _CORPORA.value:
    if not os.path.isdir(os.path.expanduser(_CORPORA.value)):
      _fail(f'--corpora: no such folder: {_CORPORA.value}')
    if _BEFORE.value and not os.path.isdir(
        os.path.join(os.path.expanduser(_BEFORE.value), 'linjax')):
      _fail(f'--before: no linjax package in {_BEFORE.value}')
    if _ROUNDS.value < 1:
      _fail(f'--rounds must be >= 1, got {_ROUNDS.value}')
    return
  if not _DATA.value:
    _fail('--data (a corpus file, e.g. ../shared/data/healthtweets/train.tsv)'
          ' or --corpora (a folder of corpora) is required')
  if not os.path.isfile(os.path.expanduser(_DATA.value)):
    _fail(f'--data: no such file: {_DATA.value}')
  for holder in (_NGRAMS, _BUCKETS, _REPEAT):
    if holder.value < 1:
      _fail(f'--{holder.name} must be >= 1, got {holder.value}')


def _best(fn, repeat):
  """Best wall and process seconds of ``repeat`` calls, and the last result."""
  wall, cpu, out = float('inf'), float('inf'), None
  for _ in range(repeat):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall = min(wall, time.perf_counter() - t0)
    cpu = min(cpu, time.process_time() - c0)
  return wall, cpu, out


def main(argv):
  # No JAX here (experiments.config_check would load it): host work only.
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  if _WORKER.value:
    _worker(_WORKER.value)
    return
  _check_flags()
  from linjax.data import readers  # pylint: disable=g-import-not-at-top
  try:
    if _CORPORA.value:
      _runner_mode()
    else:
      _featurize_speed()
  except (readers.DataError, OSError) as e:
    _fail(' '.join(str(e).split()))


def _featurize_speed():
  """Times every system and prints its JSON line."""
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax import text  # pylint: disable=g-import-not-at-top

  t0 = time.perf_counter()
  corpus = data.read_corpus(os.path.expanduser(_DATA.value))
  read_s = time.perf_counter() - t0
  texts = corpus.texts
  num_tokens = sum(len(text.tokenize(t)) for t in texts)
  common = dict(data=_DATA.value, docs=len(texts), tokens=num_tokens,
                ngrams=_NGRAMS.value, buckets=_BUCKETS.value)
  print(json.dumps(dict(system='linjax.read_corpus', seconds=round(read_s, 4),
                        **common)))

  def report(system, wall, cpu, **extra):
    print(json.dumps(dict(system=system, seconds=round(wall, 4),
                          cpu_seconds=round(cpu, 4),
                          tokens_per_s=round(num_tokens / wall),
                          **common, **extra)), flush=True)

  wall, cpu, _ = _best(lambda: [text.tokenize(t) for t in texts],
                       _REPEAT.value)
  report('linjax.tokenize', wall, cpu)
  # Spelled out: the same bag of n-grams as scikit-learn's, whatever
  # Featurizer's defaults (since c86babf: shapes, min_df 2, sublinear TF-IDF).
  make = lambda: text.Featurizer(
      ngrams=_NGRAMS.value, buckets=_BUCKETS.value, tokenizer='words_punct',
      lowercase=True, min_df=1, shape_ngrams=0, weighting='tf',
      normalize='none')
  wall, cpu, features = _best(lambda: make().fit_transform(texts),
                              _REPEAT.value)
  report('linjax', wall, cpu, nnz=features.nnz)
  fitted = make().fit(texts)
  wall, cpu, features = _best(lambda: fitted.transform(texts), _REPEAT.value)
  report('linjax.transform', wall, cpu, nnz=features.nnz)

  if _SKLEARN.value:
    from sklearn.feature_extraction import text as sktext  # pylint: disable=g-import-not-at-top
    vectorizer = sktext.HashingVectorizer(
        tokenizer=text.tokenize, token_pattern=None, lowercase=False,
        ngram_range=(1, _NGRAMS.value), n_features=_BUCKETS.value,
        alternate_sign=False, norm=None)
    wall, cpu, matrix = _best(lambda: vectorizer.transform(texts),
                              _REPEAT.value)
    report('sklearn.HashingVectorizer', wall, cpu, nnz=int(matrix.nnz))



# Runner mode -----------------------------------------------------------------


def _corpus_files(folder: str) -> tuple[str, str] | None:
  """(train, test) files of a corpus folder, or None."""
  for ext in ('tsv', 'txt'):
    train, test = (os.path.join(folder, f'{part}.{ext}')
                   for part in ('train', 'test'))
    if os.path.isfile(train) and os.path.isfile(test):
      return train, test
  return None


def _read_texts(path: str) -> list[str]:
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  import logging  # pylint: disable=g-import-not-at-top
  logging.disable(logging.WARNING)  # multi-label notices of fastText files
  return data.read_corpus(path).texts


def _worker(folder: str) -> None:
  """Prints the JSON timings of one corpus with the linjax on sys.path.

  Cold: the first featurisation of this process, as a run's; warm: the
  same again. Both: ``Featurizer()`` with its defaults, fit_transform of
  the training texts, transform of the test texts.
  """
  from linjax import text  # pylint: disable=g-import-not-at-top
  train_file, test_file = _corpus_files(folder)
  train, test = _read_texts(train_file), _read_texts(test_file)
  out = {}
  for label in ('cold', 'warm'):
    c0, t0 = time.process_time(), time.perf_counter()
    featurizer = text.Featurizer()
    train_x = featurizer.fit_transform(train)
    t1 = time.perf_counter()
    test_x = featurizer.transform(test)
    out[label] = dict(seconds=time.perf_counter() - t0,
                      fit_transform_s=t1 - t0,
                      cpu_seconds=time.process_time() - c0)
  out['nnz'] = int(train_x.nnz + test_x.nnz)
  out['linjax'] = os.path.dirname(os.path.dirname(os.path.dirname(
      text.__file__)))  # the checkout it came from
  print(json.dumps(out))


def _run_worker(tree: str, folder: str) -> dict:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [tree] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
                if p]))
  # Run as a script from a neutral folder: sys.path then starts with this
  # script's folder, not with a checkout, so PYTHONPATH decides the linjax.
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__), f'--worker={folder}'],
      env=env, capture_output=True, text=True, check=False,
      cwd=os.path.dirname(os.path.abspath(__file__)))
  if proc.returncode:
    raise RuntimeError(f'worker for {folder} with {tree} failed: '
                       f'{proc.stderr.strip().splitlines()[-1:]}')
  got = json.loads(proc.stdout.strip().splitlines()[-1])
  if os.path.realpath(got['linjax']) != os.path.realpath(tree):
    raise RuntimeError(f'the worker imported linjax from {got["linjax"]}, '
                       f'not from {tree}')
  return got


_HERE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _num_tokens(texts: list[str]) -> int:
  from linjax.text import tokenizer  # pylint: disable=g-import-not-at-top
  return int(tokenizer.tokenize_batch(texts, True, 'words_punct')
             .lengths.sum())


def _runner_mode() -> None:
  """Times every corpus of --corpora, alternating the trees round by round."""
  root = os.path.expanduser(_CORPORA.value)
  names = sorted(n for n in os.listdir(root)
                 if _corpus_files(os.path.join(root, n)))
  if _ONLY.value:
    names = [n for n in names if n in _ONLY.value]
  trees = [('after', _HERE_ROOT)]
  if _BEFORE.value:
    trees.insert(0, ('before', os.path.abspath(
        os.path.expanduser(_BEFORE.value))))
  summary = []
  for name in names:
    folder = os.path.join(root, name)
    tokens = sum(_num_tokens(_read_texts(f)) for f in _corpus_files(folder))
    rows = {label: [] for label, _ in trees}
    for round_ in range(_ROUNDS.value):
      # Alternate which tree goes first, so neither always meets the same
      # moment of the machine's load.
      order = trees if round_ % 2 == 0 else trees[::-1]
      for label, tree in order:
        got = _run_worker(tree, folder)
        rows[label].append(got)
        print(json.dumps(dict(corpus=name, tree=label, round=round_,
                              tokens=tokens, load=os.getloadavg()[0],
                              **got)), flush=True)
    for label, _ in trees:
      entry = dict(corpus=name, tree=label, tokens=tokens,
                   rounds=len(rows[label]))
      for kind in ('cold', 'warm'):
        seconds = [r[kind]['seconds'] for r in rows[label]]
        cpu = [r[kind]['cpu_seconds'] for r in rows[label]]
        entry[kind] = dict(
            best_s=round(min(seconds), 4),
            median_s=round(statistics.median(seconds), 4),
            best_cpu_s=round(min(cpu), 4),
            m_tokens_per_s_best=round(tokens / min(seconds) / 1e6, 2),
            m_tokens_per_s_median=round(
                tokens / statistics.median(seconds) / 1e6, 2))
      summary.append(entry)
      print(json.dumps(dict(summary=True, **entry)), flush=True)
  print()
  print('| corpus | train+test tokens | tree | cold M tokens/s (best / median) '
        '| cold CPU s (best) | warm M tokens/s (best) |')
  print('| --- | --- | --- | --- | --- | --- |')
  for e in summary:
    print(f"| {e['corpus']} | {e['tokens']:,} | {e['tree']} | "
          f"{e['cold']['m_tokens_per_s_best']} / "
          f"{e['cold']['m_tokens_per_s_median']} | "
          f"{e['cold']['best_cpu_s']} | {e['warm']['m_tokens_per_s_best']} |")


if __name__ == '__main__':
  app.run(main)
