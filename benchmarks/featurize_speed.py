r"""Host featurisation speed: linjax's Featurizer against scikit-learn.

Reads a corpus (`linjax.data.read_corpus`), then times, best of --repeat:

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

``--data`` (a file) is required: there is no default corpus.
"""

from __future__ import annotations

import json
import os
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


def _fail(message: str) -> None:
  sys.exit(f'error: {message}')


def _check_flags() -> None:
  """Exits with one line naming the first bad flag."""
  if not _DATA.value:
    _fail('--data is required: a corpus file, e.g. '
          '../shared/data/healthtweets/train.tsv')
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
  _check_flags()
  from linjax.data import readers  # pylint: disable=g-import-not-at-top
  try:
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


if __name__ == '__main__':
  app.run(main)
