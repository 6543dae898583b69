"""The train runner out of core: a corpus larger than memory, read in chunks.

`streams(config, options)` decides: ``data.train`` is one line-format file
(TSV, JSONL, fastText) whose in-memory run would need more than
`IN_MEMORY_MAX_MB` or the host budget (``train.max_host_mb``, 0: a quarter
of the memory available), whichever is less (the estimate is
`BYTES_PER_FILE_BYTE` times the files' size), with hashed features, single
labels, no ``data.max_per_class``, one process and one device. Then
`train_and_evaluate` runs instead of the in-memory runner:

1. One pass over the text, ``chunk_bytes`` of whole lines at a time
   (`linjax.data.shards.read_byte_shard`, the readers' own parser): labels
   (int32), and each document's raw counts (`linjax.text.chunked_fit`)
   appended to a `CsrStore` on disk (linjax/text/csr_store.py). A chunk's
   texts are freed before the next is read; the first chunk's are kept as
   the sample the saved model's bucket names come from.
2. The splits, by global index exactly as linjax/cli/run_data.py carves
   them (`split_indices`); the training documents' document frequencies,
   added up over the stored chunks; the final weights of each chunk, routed
   to one store per split (training order = file order, as in memory).
3. `linjax.engine.training.fit` on the training store: its packed steps are
   laid out by one distribution pass over the store and spilled
   (linjax/engine/spill.py); the model equals the in-memory run's.
4. Train, validation and test scores in chunks; the model, results and
   plots as the in-memory runner writes them. A carved test split's
   ``test_split.jsonl`` is written from a second read of the file.

Host memory: the labels and row offsets ([N] each), one chunk, the model.
The stores and spilled steps live in a temporary folder in the workdir.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from absl import logging
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import run_data
from linjax.cli import workdir as workdir_lib

# An in-memory run's peak RSS per byte of its training file (healthtweets
# x64: 7.3 GB for a 272 MB file; x8: 1.4 GB for 34 MB).
BYTES_PER_FILE_BYTE = 24
# Above this estimate a run streams even where memory would hold it (files
# over ~21 MB): out of core, a run's memory stays near its model's and a
# chunk's (healthtweets x8: 0.47-0.53 GB streamed against 1.25 GB in
# memory, and 12 s of CPU against 14.5 s; BUILD_NOTES 2026-12-07). Below it,
# the in-memory run keeps what streaming gives up: the refit on train +
# validation, bucket names from every training text, compiling while it
# featurises.
IN_MEMORY_MAX_MB = 512
# Entries of the stores read at a time when weighing them: 8 MB of counts
# and as much of weights (the store's default 2^22 held ~100 MB at once;
# healthtweets x8's peak while featurising 449 MB).
STORE_ENTRIES = 1 << 20
CHUNK_BYTES = 8 << 20


def _line_file(path: str, fmt: str) -> str | None:
  """The format of ``path`` if it is one file a byte range can cut."""
  from linjax.data import readers  # pylint: disable=g-import-not-at-top
  from linjax.data import shards  # pylint: disable=g-import-not-at-top
  if not path or shards.is_glob(path) or not os.path.isfile(path):
    return None
  fmt = fmt.lower() or readers.infer_format(path)
  return fmt if fmt in shards.LINE_FORMATS else None


def streams(config, options: config_check.RunOptions) -> bool:
  """Whether this run reads its corpus out of core (module docstring)."""
  dc = config.data
  if (options.training.loss != 'softmax' or dc.max_per_class or
      options.features.buckets <= 0 or not _line_file(dc.train, dc.format)
      or (dc.test and not _line_file(dc.test, dc.format))):
    return False
  import jax  # pylint: disable=g-import-not-at-top
  from linjax.engine import spill  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1 or jax.device_count() > 1:
    return False
  size = os.path.getsize(dc.train) + (os.path.getsize(dc.test) if dc.test
                                      else 0)
  return size * BYTES_PER_FILE_BYTE > min(
      IN_MEMORY_MAX_MB << 20, spill.budget_bytes(options.training.max_host_mb))


def read_chunks(path: str, fmt: str, dc, chunk_bytes: int = CHUNK_BYTES):
  """Yields the `Dataset` of each ``chunk_bytes`` of whole lines of
  ``path``, in order; errors name the whole file's line."""
  from linjax.data import shards  # pylint: disable=g-import-not-at-top
  count = max(1, -(-os.path.getsize(path) // int(chunk_bytes)))
  line, at = 1, 0
  for i in range(count):
    start, _ = shards.byte_range(path, i, count)
    line += shards.count_lines(path, at, start)
    at = start
    yield shards.read_byte_shard(
        path, fmt, i, count, first_line=line, text_column=dc.text_column,
        label_column=dc.label_column, lenient=dc.lenient)


def split_indices(y: np.ndarray, dc, seed: int, has_test_file: bool):
  """(train, validation, test) int64 indices into the corpus:
  `run_data.carve_indices` with the stratified split (test: None with a
  test file)."""
  from linjax.data import corpus  # pylint: disable=g-import-not-at-top
  return run_data.carve_indices(y, dc, seed, corpus.stratified_split,
                                has_test_file)


class _Labels:
  """Label strings -> provisional ids in order of appearance, chunk by
  chunk; `finish` maps them to the sorted `LabelMap`'s ids."""

  def __init__(self):
    self.index, self.parts = {}, []

  def add(self, labels) -> None:
    uniq, inverse = np.unique(np.asarray(labels, dtype=object).astype(str),
                              return_inverse=True)
    ids = np.array([self.index.setdefault(u, len(self.index))
                    for u in uniq.tolist()], np.int32)
    self.parts.append(ids[inverse.reshape(-1)] if uniq.size else
                      np.zeros(0, np.int32))

  def finish(self):
    from linjax.data import corpus  # pylint: disable=g-import-not-at-top
    label_map = corpus.LabelMap.fit(self.index)
    remap = np.zeros(max(len(self.index), 1), np.int32)
    for name, i in self.index.items():
      remap[i] = label_map.encode([name])[0]
    y = (remap[np.concatenate(self.parts)] if self.parts
         else np.zeros(0, np.int32))
    return label_map, y


class Streamed(NamedTuple):
  """A streamed corpus, featurised: stores on disk, labels in memory."""

  label_map: object
  featurizer: object
  train_x: object          # CsrStore
  train_y: np.ndarray
  val_x: object            # CsrStore or None
  val_y: np.ndarray
  test_x: object           # CsrStore or None
  test_y: np.ndarray
  test_idx: np.ndarray | None   # a carved test split's corpus indices
  load_seconds: float
  featurize_seconds: float


def _count_file(path, fmt, dc, counter, store, chunk_bytes, labels=None,
                label_map=None, keep_first=None):
  """Appends the raw counts of every document of ``path`` to ``store``;
  returns the seconds spent featurising (the rest is reading)."""
  seconds, encoded = 0.0, []
  for i, data in enumerate(read_chunks(path, fmt, dc, chunk_bytes)):
    if labels is not None:
      labels.add(data.labels)
    else:
      encoded.append(label_map.encode(data.labels, data.sources))
    if i == 0 and keep_first is not None:
      keep_first.extend(data.texts)
    start = time.perf_counter()
    store.append(counter.transform(data.texts))
    seconds += time.perf_counter() - start
    del data
  return seconds, encoded


def read_and_featurise(config, options, folder: str,
                       chunk_bytes: int = CHUNK_BYTES) -> Streamed:
  """Steps 1 and 2 of the module docstring; stores under ``folder``.

  Raises:
    DataError: as the in-memory runner (file and line of a bad input).
  """
  from linjax.data import corpus  # pylint: disable=g-import-not-at-top
  from linjax.text import chunked_fit  # pylint: disable=g-import-not-at-top
  from linjax.text.csr_store import CsrStore  # pylint: disable=g-import-not-at-top
  dc, seed, opts = config.data, int(config.train.seed), options.features
  start = time.perf_counter()
  counter = chunked_fit.counting_featurizer(opts)
  raw = CsrStore(opts.buckets, parent=folder)
  labels, first_texts = _Labels(), []
  count_seconds, _ = _count_file(dc.train, _line_file(dc.train, dc.format),
                                 dc, counter, raw, chunk_bytes, labels=labels,
                                 keep_first=first_texts)
  label_map, y = labels.finish()
  if not y.shape[0]:
    raise corpus.DataError('no documents.', path=dc.train)
  if label_map.num_classes < 2:
    raise corpus.DataError(f'only one class ({label_map.names[0]!r}); a '
                           'classifier needs at least two.', path=dc.train)
  test_raw = test_y = None
  if dc.test:
    test_raw = CsrStore(opts.buckets, parent=folder)
    seconds, parts = _count_file(dc.test, _line_file(dc.test, dc.format), dc,
                                 counter, test_raw, chunk_bytes,
                                 label_map=label_map)
    count_seconds += seconds
    test_y = np.concatenate(parts) if parts else np.zeros(0, np.int32)
  train_idx, val_idx, test_idx = split_indices(y, dc, seed, bool(dc.test))
  load_seconds = time.perf_counter() - start - count_seconds

  start = time.perf_counter()
  split_of = np.zeros(y.shape[0], np.int8)     # 0 train, 1 val, 2 test
  split_of[val_idx] = 1
  if test_idx is not None:
    split_of[test_idx] = 2
  df = None
  if opts.uses_document_frequencies:
    df = chunked_fit.DocumentFrequencies(opts.buckets)
    for lo, part in raw.chunks(STORE_ENTRIES):
      df.add(part.take(np.flatnonzero(split_of[lo:lo + part.num_docs] == 0)))
  sample = [t for t, s in zip(first_texts, split_of[:len(first_texts)])
            if s == 0]
  del first_texts
  featurizer = chunked_fit.fitted_featurizer(opts, df, sample)
  stores = [CsrStore(opts.buckets, parent=folder) for _ in range(3)]
  for lo, part in raw.chunks(STORE_ENTRIES):
    weighed = chunked_fit.weigh(opts, part, df)
    where = split_of[lo:lo + part.num_docs]
    for s, store in enumerate(stores):
      store.append(weighed.take(np.flatnonzero(where == s)))
  raw.close()
  if test_raw is not None:
    for _, part in test_raw.chunks(STORE_ENTRIES):
      stores[2].append(chunked_fit.weigh(opts, part, df))
    test_raw.close()
    test_y = np.asarray(test_y, np.int32)
  else:
    test_y = y[test_idx]
  train_x, val_x, test_x = stores
  return Streamed(
      label_map=label_map, featurizer=featurizer, train_x=train_x,
      train_y=y[train_idx], val_x=val_x if val_x.num_docs else None,
      val_y=y[val_idx], test_x=test_x if test_x.num_docs else None,
      test_y=test_y, test_idx=test_idx, load_seconds=load_seconds,
      featurize_seconds=count_seconds + time.perf_counter() - start)


def evaluate(params, x, y, loss='softmax') -> dict:
  """dict(loss=mean of the trained ``loss``, accuracy) of ``x`` (a
  CsrStore), chunk by chunk with `scoring.evaluate` (numpy on the host:
  nothing compiled per chunk shape), so the scores of the whole split are
  never held at once."""
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  if not hasattr(x, 'chunks'):   # in memory (a sample of the training split)
    return {k: float(v) for k, v in scoring.evaluate(params, x, y,
                                                     loss).items()}
  total = correct = 0.0
  for lo, part in x.chunks(1 << 20):
    part_eval = scoring.evaluate(params, part, y[lo:lo + part.num_docs], loss)
    total += part_eval['loss'] * part.num_docs
    correct += part_eval['accuracy'] * part.num_docs
  n = max(x.num_docs, 1)
  return dict(loss=total / n, accuracy=correct / n)


def predict_proba(params, x) -> np.ndarray:
  """float32 [N, C] class probabilities of a CsrStore, in chunks."""
  from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
  progress = console.Progress('evaluating', x.num_docs, 'documents')
  parts = []
  for lo, part in x.chunks(1 << 20):
    parts.append(scoring.predict_proba(params, part))
    progress.update(lo + part.num_docs)
  return np.concatenate(parts)


def write_test_split(path: str, config, test_idx: np.ndarray) -> None:
  """The carved test split as JSONL (as the in-memory runner writes it),
  from a second read of ``data.train``, atomically."""
  dc = config.data
  tmp = path + '.partial'
  with open(tmp, 'w', encoding='utf-8') as f:
    first = 0
    for data in read_chunks(dc.train, _line_file(dc.train, dc.format), dc):
      n = len(data.texts)
      a, b = np.searchsorted(test_idx, [first, first + n])
      local = (test_idx[a:b] - first).tolist()
      f.write(workdir_lib.split_as_jsonl(
          [data.texts[i] for i in local], [data.labels[i] for i in local],
          dc.text_column, dc.label_column))
      first += n
  os.replace(tmp, path)
