"""The peer systems of the benchmark: fastText and two scikit-learn pipelines.

Each peer is run exactly as the project's reference script
(``shared/bench/peers.py``) runs it, so that our numbers and the reference's
can be compared: the same reader, the same tokenisation (lower-cased words and
punctuation marks), the same hyper-parameters, and the same timed regions
(wall seconds, `time.perf_counter`; fit includes featurisation, predict
includes featurising the test texts). fastText's ``fit_s`` is training on its
prepared input file (its best case); its ``fit_raw_s`` adds the making of
that file from the raw texts (tokenising, lower-casing, writing), as a user
starts.

Every peer is an optional dependency (the ``bench`` extra): its package is
imported inside its runner, and `missing_package` says which one is absent
without importing anything heavy. This module imports neither JAX nor linjax,
so a peer's worker process holds only the peer's own libraries in memory.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import time
from typing import Callable, NamedTuple, Sequence

TOKEN = re.compile(r'\w+|[^\w\s]')


class Corpus(NamedTuple):
  """Parallel lists: texts [N] and their string labels [N]."""
  texts: list
  labels: list


class PeerResult(NamedTuple):
  """What a peer returns: predicted labels [N_test] and wall seconds.

  ``fit_raw_s`` (fastText only, else None): raw text to model, the writing
  of the tokenised training file included.
  """
  predictions: list
  fit_s: float
  predict_s: float
  fit_raw_s: float | None = None


def read_tsv(path: str) -> Corpus:
  """Reads a ``label<TAB>text`` TSV with a header line, as peers.py does."""
  labels, texts = [], []
  with open(path, encoding='utf-8') as f:
    next(f)
    for line in f:
      label, _, text = line.rstrip('\n').partition('\t')
      labels.append(label)
      texts.append(text)
  return Corpus(texts, labels)


def tokenize(text: str) -> list:
  """The tokenisation every peer gets: lower-cased words and punctuation."""
  return TOKEN.findall(text.lower())


def count_tokens(texts: Sequence[str]) -> int:
  """Training tokens as the reference counts them (words and punctuation)."""
  return sum(len(TOKEN.findall(t)) for t in texts)


def fasttext_line(label: str, text: str) -> str:
  """One line of fastText's supervised input format."""
  return '__label__' + label + ' ' + ' '.join(tokenize(text))


def run_fasttext(train: Corpus, test: Corpus, threads: int) -> PeerResult:
  """fastText supervised: 5 epochs, lr 0.5, bigrams, dim 10, 2M buckets.

  ``fit_s`` times training on the prepared file; ``fit_raw_s`` starts
  before the file is written (``shared/bench/peers.py`` times the same).
  """
  import fasttext  # pylint: disable=g-import-not-at-top
  fasttext.FastText.eprint = lambda *a, **k: None
  t_raw = time.perf_counter()  # raw text -> fastText's input file
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False,
                                   encoding='utf-8') as f:
    for text, label in zip(train.texts, train.labels):
      f.write(fasttext_line(label, text) + '\n')
    path = f.name
  try:
    t0 = time.perf_counter()
    model = fasttext.train_supervised(
        input=path, epoch=5, lr=0.5, wordNgrams=2, dim=10, bucket=2_000_000,
        minCount=1, thread=threads, verbose=0, seed=0)
    fit_s = time.perf_counter() - t0
    fit_raw_s = time.perf_counter() - t_raw
  finally:
    os.unlink(path)
  t0 = time.perf_counter()
  predictions = [
      model.predict(' '.join(tokenize(x)).replace('\n', ' '))[0][0][9:]
      for x in test.texts]
  return PeerResult(predictions, fit_s, time.perf_counter() - t0, fit_raw_s)


def run_sklearn_lbfgs(train: Corpus, test: Corpus, threads: int) -> PeerResult:
  """TF-IDF (1,2)-grams, min_df 2, sublinear TF + LogisticRegression(C=10)."""
  del threads  # lbfgs multinomial is single-process, as in the reference.
  from sklearn.feature_extraction.text import TfidfVectorizer  # pylint: disable=g-import-not-at-top
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  vectorizer = TfidfVectorizer(tokenizer=tokenize, token_pattern=None,
                               lowercase=False, sublinear_tf=True,
                               ngram_range=(1, 2), min_df=2)
  a = vectorizer.fit_transform(train.texts)
  model = LogisticRegression(C=10, max_iter=1000).fit(a, train.labels)
  fit_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  predictions = model.predict(vectorizer.transform(test.texts))
  return PeerResult([str(p) for p in predictions], fit_s,
                    time.perf_counter() - t0)


def run_sklearn_sgd(train: Corpus, test: Corpus, threads: int) -> PeerResult:
  """Hashed (1,2)-grams, sublinear TF-IDF + SGD log-loss, 10 epochs."""
  from sklearn.feature_extraction.text import HashingVectorizer  # pylint: disable=g-import-not-at-top
  from sklearn.feature_extraction.text import TfidfTransformer  # pylint: disable=g-import-not-at-top
  from sklearn.linear_model import SGDClassifier  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  vectorizer = HashingVectorizer(tokenizer=tokenize, token_pattern=None,
                                 lowercase=False, ngram_range=(1, 2),
                                 n_features=2**20, alternate_sign=False,
                                 norm=None)
  tfidf = TfidfTransformer(sublinear_tf=True)
  a = tfidf.fit_transform(vectorizer.transform(train.texts))
  model = SGDClassifier(loss='log_loss', alpha=1e-6, max_iter=10, tol=None,
                        n_jobs=threads, random_state=0).fit(a, train.labels)
  fit_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  predictions = model.predict(tfidf.transform(vectorizer.transform(test.texts)))
  return PeerResult([str(p) for p in predictions], fit_s,
                    time.perf_counter() - t0)


PEERS: dict[str, Callable[[Corpus, Corpus, int], PeerResult]] = {
    'fasttext': run_fasttext,
    'sklearn_sgd': run_sklearn_sgd,
    'sklearn_lbfgs': run_sklearn_lbfgs,
}

# The import name of each peer's package, and the pip name to install.
PACKAGES = {
    'fasttext': ('fasttext', 'fasttext-numpy2'),
    'sklearn_sgd': ('sklearn', 'scikit-learn'),
    'sklearn_lbfgs': ('sklearn', 'scikit-learn'),
}


def missing_package(name: str) -> str | None:
  """The pip package a peer needs but cannot find, or None if importable."""
  module, pip_name = PACKAGES[name]
  if importlib.util.find_spec(module) is None:
    return pip_name
  return None


def import_peer(name: str) -> None:
  """Imports a peer's libraries (outside any timed region, as peers.py does)."""
  if name == 'fasttext':
    import fasttext  # pylint: disable=g-import-not-at-top,unused-import
  else:
    import sklearn.feature_extraction.text  # pylint: disable=g-import-not-at-top,unused-import
    import sklearn.linear_model  # pylint: disable=g-import-not-at-top,unused-import
