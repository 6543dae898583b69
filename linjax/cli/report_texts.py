"""Where report.html's test texts come from when a run does not hold them.

report.html embeds at most ``report.max_docs`` test documents, chosen from
the labels and predictions alone (linjax/analysis/report_sampling.py), so
a run needs the texts of those documents only:

* in memory, one process: the list of test texts (`finish_run.Trained`'s
  ``test_texts``);
* out of core (linjax/cli/stream_run.py): `StreamedTexts` reads them back
  on the report's thread while the model is saved, keeping only the chosen
  ones: from the test file, or from test_split.jsonl once the run has
  written a test split carved from the training file;
* several processes (linjax/cli/multiprocess_run.py): each process holds
  its part of the test split (`ProcessTexts`); `for_writer`, called by
  every process right after the test split is scored, sends process 0 the
  texts of the candidates in its part (UTF-8 bytes through
  `Group.gather_rows`), at most ``max_docs`` texts in all.

`StreamedTexts` and what `for_writer` hands process 0 answer ``len()``
(the test documents, all processes) and ``take(rows)`` (the texts of
sorted rows of the test split), and the page embeds exactly the documents
of an in-memory run with the same labels and predictions.
"""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np

# A streamed run's test file is read back this many bytes of whole lines at
# a time (a chunk's parsed texts are what the reading adds to the run's
# memory: ~100 MB at the runner's 8 MB chunks, measured on healthtweets x8).
READ_BYTES = 1 << 20


class StreamedTexts:
  """The test texts of an out-of-core run, read on demand.

  A test file (``data.test``) is read again, ``READ_BYTES`` of whole lines
  at a time, keeping only the texts asked for. A test split carved from
  ``data.train`` is read from the run's test_split.jsonl once the run has
  written it (`writing_test_split`): a few thousand lines parsed out of the
  test split instead of a second pass over the whole training file.

  Args:
    config: the run's ConfigDict (``data.train``, ``data.test``, reader
      settings).
    test_idx: int64 [N] sorted corpus indices of a test split carved from
      ``data.train``; None when ``data.test`` is the test split.
    test_y: int [N] the test labels (each text read is checked against its
      label: the file must not change during the run).
    label_map: the run's `LabelMap`.
    chunk_bytes: bytes of whole lines read at a time (at most
      ``READ_BYTES``).
  """

  def __init__(self, config, test_idx, test_y, label_map,
               chunk_bytes: int = READ_BYTES):
    self._config = config
    self._test_idx = None if test_idx is None else np.asarray(test_idx,
                                                              np.int64)
    self._test_y = np.asarray(test_y)
    self._label_map = label_map
    self._chunk_bytes = min(int(chunk_bytes), READ_BYTES)
    self._split_written = None   # threading.Event once a writer is wrapped
    self._split_path = None

  def __len__(self) -> int:
    return int(self._test_y.shape[0])

  def writing_test_split(self, write):
    """``write(path)`` (the run's writer of test_split.jsonl), wrapped so
    that `take` waits for it and reads the texts from that file."""
    self._split_written = threading.Event()

    def wrapped(path: str) -> None:
      try:
        write(path)
        self._split_path = path
      finally:   # on failure `take` reads data.train instead
        self._split_written.set()
    return wrapped

  def take(self, rows) -> list[str]:
    """The texts of ``rows`` (int [M] sorted rows of the test split); only
    those texts are kept, and the reading stops after the last of them."""
    from linjax.data import corpus  # pylint: disable=g-import-not-at-top
    rows = np.asarray(rows, np.int64)
    if self._split_written is not None and self._test_idx is not None:
      self._split_written.wait()
    dc = self._config.data
    if self._split_path is not None:
      path = self._split_path
      texts, labels = self._from_jsonl(path, rows)
    else:
      path = dc.test or dc.train
      texts, labels = self._from_corpus(
          path, rows if dc.test else self._test_idx[rows])
    expected = self._label_map.decode(self._test_y[rows])
    if len(texts) != rows.size or labels != [str(e) for e in expected]:
      raise corpus.DataError(
          'the test documents read back for report.html are not those the '
          'run scored (did the file change during the run?).', path=path,
          fix='rerun, or write the page with linjax report.')
    return texts

  def _from_corpus(self, path: str, want: np.ndarray):
    """(texts, label strings) of the documents ``want`` (sorted corpus
    indices) of ``path``, read as the run read it."""
    from linjax.cli import stream_data  # pylint: disable=g-import-not-at-top
    from linjax.data import readers  # pylint: disable=g-import-not-at-top
    dc = self._config.data
    fmt = dc.format.lower() or readers.infer_format(path)
    texts, labels, first = [], [], 0
    if not want.size:
      return texts, labels
    for data in stream_data.read_chunks(path, fmt, dc, self._chunk_bytes):
      n = len(data.texts)
      a, b = np.searchsorted(want, [first, first + n])
      for i in (want[a:b] - first).tolist():
        texts.append(data.texts[i])
        labels.append(str(data.labels[i]))
      first += n
      if b == want.size:   # the last one is read: the rest is not needed
        break
    return texts, labels

  def _from_jsonl(self, path: str, rows: np.ndarray):
    """(texts, label strings) of ``rows`` of test_split.jsonl (one line a
    document, `workdir.split_as_jsonl`); only those lines are parsed."""
    dc = self._config.data
    texts, labels = [], []
    wanted = iter(rows.tolist())
    target = next(wanted, None)
    with open(path, encoding='utf-8', newline='\n') as f:
      for i, line in enumerate(f):
        if target is None:
          break
        if i == target:
          record = json.loads(line)
          texts.append(record[dc.text_column])
          labels.append(str(record[dc.label_column]))
          target = next(wanted, None)
    return texts, labels


class ProcessTexts:
  """This process's part of a test split spread over several processes.

  Args:
    group: the run's `multiprocess_run.Group`.
    local: this process's test texts (the parts, in process order, are the
      1-process test split).
  """

  def __init__(self, group, local):
    self.group = group
    self.local = local

  def gather(self, rows) -> dict:
    """{row: text} of ``rows`` (int [M] sorted global rows, the same on
    every process) on every process; collective: each process sends the
    texts of the rows in its part (UTF-8), nothing else."""
    rows = np.asarray(rows, np.int64)
    counts, = self.group.gather_rows(np.array([len(self.local)], np.int64))
    lo = int(counts[:self.group.index].sum())
    mine = rows[(rows >= lo) & (rows < lo + len(self.local))] - lo
    blobs = [self.local[i].encode('utf-8', 'surrogatepass')
             for i in mine.tolist()]
    # Never empty (a process may have no candidate): its count comes first,
    # and a sentinel byte ends its bytes.
    header = np.array([len(blobs)] + [len(b) for b in blobs], np.int64)
    body = np.frombuffer(b''.join(blobs) + b'\0', np.uint8)
    headers, bodies = self.group.gather_rows(header, body)
    texts, at, pos = [], 0, 0
    for _ in range(self.group.count):
      k = int(headers[at])
      for length in headers[at + 1:at + 1 + k].tolist():
        texts.append(bytes(bodies[pos:pos + length]).decode(
            'utf-8', 'surrogatepass'))
        pos += length
      at, pos = at + 1 + k, pos + 1
    if len(texts) != rows.size:
      raise RuntimeError(f'gathered {len(texts)} test texts for report.html, '
                         f'expected {rows.size}')
    return dict(zip(rows.tolist(), texts))


class SampledTexts:
  """Some texts of a split of ``num`` documents, by row (what `for_writer`
  gathered): ``take`` answers for those rows only."""

  def __init__(self, num: int, text_of: dict):
    self._num, self._text_of = int(num), text_of

  def __len__(self) -> int:
    return self._num

  def take(self, rows) -> list[str]:
    return [self._text_of[r] for r in np.asarray(rows, np.int64).tolist()]


def for_writer(t, test_scores, threshold):
  """``t`` (a `finish_run.Trained`) whose ``test_texts`` process 0 can
  read: on several processes (``t.test_texts`` a `ProcessTexts`) every
  process calls this at the same point, and process 0 gets the texts of
  the report's candidates (`report_sampling.candidates` of the gathered
  labels and predictions, which every process holds). Otherwise ``t`` as
  it is.

  Args:
    t: the run.
    test_scores: (y, proba) of the whole test split (every process's), or
      None.
    threshold: the multi-label threshold (None: single-label).
  """
  from linjax.cli import report as report_cli  # pylint: disable=g-import-not-at-top
  max_docs = report_cli.max_docs_of(t.config)
  if (not isinstance(t.test_texts, ProcessTexts) or test_scores is None or
      not max_docs):   # the same on every process
    return t
  from linjax.analysis import report_data  # pylint: disable=g-import-not-at-top
  from linjax.analysis import report_sampling  # pylint: disable=g-import-not-at-top
  options = report_data.ReportOptions(max_docs=max_docs)
  y, proba = test_scores
  rows = report_sampling.candidates(
      *report_sampling.document_strata(y, proba, threshold), max_docs,
      options.error_share, options.seed).rows()
  text_of = t.test_texts.gather(rows)
  if not t.test_texts.group.is_writer:
    return t
  return dataclasses.replace(
      t, test_texts=SampledTexts(np.shape(proba)[0], text_of))
