"""report.html at every scale: out-of-core runs and runs on several processes.

A run that streams its corpus, or whose test documents lie on several
processes, holds no list of test texts; it reads back (or gathers) only the
documents the page embeds. Checked here: the sampling that needs the texts of
the candidates only picks the documents of the rule with every text's size
known (linjax/analysis/report_sampling.py); a streamed run's page has the
whole test split's numbers (= results.json's) and embeds the documents an
in-memory run of the same model embeds, misclassified first, within the
bound; the texts read back or gathered are the documents' (a file changed
under the run is refused); a 2-process run's page (process 0) equals the
1-process run's.
"""

import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from linjax import saved_model
from linjax.analysis import report_data
from linjax.analysis import report_sampling as sampling
from linjax.cli import report_texts
from linjax.cli import stream_data
from linjax.cli import stream_run
from linjax.cli import train
from linjax.cli import workdir as workdir_lib
from linjax.cli.configs import default
from linjax.data import corpus as corpus_lib

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)
from localhost import child_env  # pylint: disable=g-import-not-at-top,wrong-import-position
from localhost import free_port  # pylint: disable=g-import-not-at-top,wrong-import-position
from localhost import run_together  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_stream_data import _config as stream_config  # pylint: disable=g-import-not-at-top,wrong-import-position

CLASSES = ('alpha', 'beta', 'gamma')
EXTRA = ['café', 'naïve', '\U0001F680', 'ΣΑΣ', '<b>x</b>', '&amp;']


def noisy_tsv(path, n, seed):
  """Three classes; 30 % of the documents take another class's words (so
  the model errs), lengths 2-30 tokens (so the byte budget can bite), and
  some non-ASCII tokens (UTF-8 through every path)."""
  rng = np.random.default_rng(seed)
  words = {c: [f'{c[:2]}{k}' for k in range(25)] + ['the', 'of']
           for c in CLASSES}
  with open(path, 'w', encoding='utf-8') as f:
    f.write('label\ttext\n')
    for _ in range(n):
      c = CLASSES[rng.integers(3)]
      source = CLASSES[rng.integers(3)] if rng.random() < 0.3 else c
      toks = list(rng.choice(words[source], rng.integers(2, 30)))
      if rng.random() < 0.2:
        toks.append(EXTRA[rng.integers(len(EXTRA))])
      f.write(c + '\t' + ' '.join(toks) + '\n')
  return str(path)


def read_tsv(path):
  with open(path, encoding='utf-8') as f:
    rows = [line.rstrip('\n').split('\t', 1) for line in f][1:]
  return [r[1] for r in rows], [r[0] for r in rows]


def page_payload(path):
  with open(path, encoding='utf-8') as f:
    return json.loads(re.search(r'id="report-data">(.*?)</script>', f.read(),
                                re.S).group(1))


def lazy(texts, asked):
  """A text source that records every row it is asked for."""

  class Source:
    def __len__(self):
      return len(texts)

    def take(self, rows):
      asked.extend(np.asarray(rows).tolist())
      return [texts[i] for i in rows]
  return Source()


# The sampling rule with the candidates' texts only. ---------------------------


@pytest.mark.parametrize('multi', [False, True])
@pytest.mark.parametrize('max_docs,max_doc_bytes', [
    (50, 3_500_000), (400, 3_500_000), (400, 20_000), (3000, 60_000),
    (0, 3_500_000)])
def test_sampling_reads_only_candidates_and_picks_the_full_rules_documents(
    multi, max_docs, max_doc_bytes):
  rng = np.random.default_rng(max_docs + max_doc_bytes + multi)
  n, c = 2500, 5
  texts = ['x' * int(k) for k in rng.integers(0, 400, n)]
  proba = rng.dirichlet(np.ones(c), n)
  if multi:
    y = (rng.random((n, c)) < 0.3).astype(np.int32)
    threshold = 0.3
  else:
    y = np.where(rng.random(n) < 0.6, proba.argmax(1), rng.integers(0, c, n))
    threshold = None
  options = report_data.ReportOptions(max_docs=max_docs,
                                      max_doc_bytes=max_doc_bytes)
  # The rule with every document's size known, from its own parts.
  wrong, groups_err, groups_cor = sampling.document_strata(y, proba,
                                                           threshold)
  full = sampling.choose_documents(wrong, groups_err, groups_cor,
                                   sampling.estimated_bytes(texts), options)
  asked = []
  chosen, text_of, wrong2 = sampling.sample(lazy(texts, asked), y, proba,
                                            threshold, options)
  np.testing.assert_array_equal(chosen, full)
  np.testing.assert_array_equal(wrong2, wrong)
  assert text_of == {i: texts[i] for i in full.tolist()}
  assert len(asked) <= max_docs and asked == sorted(set(asked))
  assert set(full.tolist()) <= set(asked)
  # The bounds, against the labels computed here.
  if multi:
    want_wrong = ((y > 0) != (proba >= threshold)).any(1)
  else:
    want_wrong = proba.argmax(1) != y
  np.testing.assert_array_equal(wrong, want_wrong)
  assert len(full) <= max_docs
  cost = 4.0 * np.array([len(t) for t in texts]) + 60
  assert cost[full].sum() <= max_doc_bytes or len(full) <= 2
  if max_doc_bytes >= 3_000_000 and max_docs:
    # Misclassified first: as many as the share allows, correct ones after.
    n_err = min(want_wrong.sum(), max(round(0.75 * max_docs),
                                      max_docs - (~want_wrong).sum()))
    assert want_wrong[full].sum() == n_err
    assert len(full) == min(max_docs, n)


def test_payload_from_a_text_source_equals_the_in_memory_payload(tmp_path):
  """build_payload with texts read on demand = with the list (docs, metrics),
  and it asks for at most max_docs texts."""
  sys.path.insert(0, TESTS)
  from test_report import make_model  # pylint: disable=g-import-not-at-top
  model_dir, texts, labels = make_model(tmp_path)
  model = saved_model.load(model_dir)
  y = model.label_map.encode(labels)
  proba = np.asarray(model.predict_proba(texts))
  kwargs = dict(y_true=y, proba=proba, W=np.asarray(model.params.W),
                b=np.asarray(model.params.b), featurizer=model.featurizer,
                label_names=model.label_map.names,
                options=report_data.ReportOptions(max_docs=25))
  asked = []
  a = report_data.build_payload(texts=texts, **kwargs)
  b = report_data.build_payload(texts=lazy(texts, asked), **kwargs)
  assert 0 < len(asked) <= 25
  for key in ('docs', 'confusion', 'metrics', 'per_class', 'calibration',
              'errors_total', 'errors_embedded', 'docs_total'):
    assert a[key] == b[key], key


# The sources of texts. -------------------------------------------------------


def test_streamed_texts_reads_back_the_rows_and_refuses_a_changed_file(
    tmp_path):
  path = noisy_tsv(tmp_path / 'train.tsv', 700, seed=1)
  texts, labels = read_tsv(path)
  label_map = corpus_lib.LabelMap.fit(labels)
  y = label_map.encode(labels)
  config = default.get_config()
  config.data.train = path
  test_idx = np.sort(np.random.default_rng(0).choice(700, 120, replace=False))
  source = report_texts.StreamedTexts(config, test_idx, y[test_idx],
                                      label_map, chunk_bytes=1500)
  assert len(source) == 120
  rows = np.array([0, 1, 57, 58, 119])
  assert source.take(rows) == [texts[i] for i in test_idx[rows]]
  assert source.take(np.zeros(0, np.int64)) == []
  # Once the run has written test_split.jsonl, the texts come from there
  # (texts with tabs and newlines too), not from the training file.
  tricky = {3: 'a\ttab and a\nnewline \u2028 here', 58: ''}
  written = [tricky.get(r, texts[i]) for r, i in enumerate(test_idx)]
  split_path = str(tmp_path / 'test_split.jsonl')

  def write_split(p):
    workdir_lib.write_atomic(p, workdir_lib.split_as_jsonl(
        written, [labels[i] for i in test_idx], 'text', 'label'))

  source.writing_test_split(write_split)(split_path)
  os.rename(path, path + '.away')
  rows = np.array([2, 3, 58, 119])
  assert source.take(rows) == [written[r] for r in rows]
  os.rename(path + '.away', path)
  # A test file: the rows are its documents.
  config.data.test = path
  whole = report_texts.StreamedTexts(config, None, y, label_map,
                                     chunk_bytes=700)
  rows = np.arange(0, 700, 37)
  assert whole.take(rows) == [texts[i] for i in rows]
  # The file changed (lines swapped): the labels read back disagree.
  with open(path, encoding='utf-8') as f:
    lines = f.readlines()
  first = next(i for i in range(2, len(lines))
               if lines[i].split('\t')[0] != lines[1].split('\t')[0])
  lines[1], lines[first] = lines[first], lines[1]
  with open(path, 'w', encoding='utf-8') as f:
    f.writelines(lines)
  with pytest.raises(corpus_lib.DataError, match='did the file change'):
    whole.take(np.array([0]))


class _ThreadGroup:
  """The collective of `multiprocess_run.Group.gather_rows` between
  threads: every member's rows, one after another in member order."""

  def __init__(self, index, count, board, barrier):
    self.index, self.count = index, count
    self._board, self._barrier = board, barrier

  @property
  def is_writer(self):
    return self.index == 0

  def gather_rows(self, *arrays):
    self._barrier.wait()
    self._board[self.index] = arrays
    self._barrier.wait()
    out = tuple(np.concatenate([self._board[p][k] for p in range(self.count)])
                for k in range(len(arrays)))
    self._barrier.wait()
    return out


def test_process_texts_gather_the_rows_of_every_part():
  parts = [['a', '', 'café \U0001F680', 'lone \ud800 surrogate'],
           [],                       # a process with no test document
           ['x' * 1000, 'Σ', 'tail']]
  flat = [t for p in parts for t in p]
  board, barrier = {}, threading.Barrier(3)
  results = [None] * 3

  def member(p, rows):
    group = _ThreadGroup(p, 3, board, barrier)
    results[p] = report_texts.ProcessTexts(group, parts[p]).gather(rows)

  for rows in (np.array([0, 1, 2, 3, 5, 6]), np.array([4]),
               np.zeros(0, np.int64), np.arange(7)):
    threads = [threading.Thread(target=member, args=(p, rows))
               for p in range(3)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    want = {int(r): flat[r] for r in rows}
    assert results == [want] * 3


# Runs. -----------------------------------------------------------------------


def _config(train_path, test_path='', max_docs=60, max_host_mb=0):
  """test_stream_data's run config, with the report's document bound."""
  config = stream_config(train_path, test_path, max_host_mb)
  config.report.max_docs = max_docs
  return config


@pytest.mark.parametrize('with_test_file,max_docs', [(False, 60),
                                                     (True, 400)])
def test_a_streamed_run_writes_the_in_memory_runs_report(
    tmp_path, with_test_file, max_docs):
  path = noisy_tsv(tmp_path / 'train.tsv', 2500, seed=0)
  test = noisy_tsv(tmp_path / 'test.tsv', 300, seed=2) if with_test_file else ''
  memory = train.train_and_evaluate(_config(path, test, max_docs),
                                    str(tmp_path / 'mem'))
  assert 'streamed' not in memory
  if with_test_file:   # several chunks of the test file
    streamed = stream_run.train_and_evaluate(
        _config(path, test, max_docs), str(tmp_path / 'str'),
        chunk_bytes=3000)
  else:   # forced by a small budget, through the runner's own entry point
    streamed = train.train_and_evaluate(_config(path, '', max_docs, 1),
                                        str(tmp_path / 'str'))
  assert streamed['streamed']
  page = tmp_path / 'str' / 'report.html'
  assert streamed['report'] == str(page) and page.exists()
  with open(tmp_path / 'str' / 'results.json') as f:
    results = json.load(f)
  assert results['report_bytes'] == page.stat().st_size
  got = page_payload(page)

  # The page's numbers are the whole test split's, results.json's.
  confusion = np.array(got['confusion'])
  assert confusion.sum() == results['num_test'] == got['docs_total']
  assert got['confusion'] == results['test_report']['confusion_matrix']
  assert got['metrics']['accuracy'] == pytest.approx(results['test_accuracy'])
  assert got['metrics']['macro_f1'] == pytest.approx(results['test_macro_f1'])

  # Independently: the saved model's predictions of the test texts.
  test_texts, test_labels = read_tsv(test) if with_test_file else (
      [], [])
  if not with_test_file:
    with open(tmp_path / 'str' / 'test_split.jsonl', encoding='utf-8') as f:
      rows = [json.loads(line) for line in f]
    test_texts = [r['text'] for r in rows]
    test_labels = [r['label'] for r in rows]
  model = saved_model.load(str(tmp_path / 'str' / 'model'))
  y = model.label_map.encode(test_labels)
  wrong = np.asarray(model.predict_proba(test_texts)).argmax(1) != y
  assert wrong.sum() == got['errors_total'] == confusion.sum() - np.trace(
      confusion)
  index = np.array(got['docs']['index'])
  assert 0 < index.size <= max_docs
  assert got['docs']['text'] == [test_texts[i] for i in index]
  assert got['docs']['true'] == y[index].tolist()
  # Misclassified first: as many as the share allows (all when they fit).
  n_err = min(wrong.sum(), max(round(0.75 * max_docs),
                               max_docs - (~wrong).sum()))
  assert wrong[index].sum() == got['errors_embedded'] == n_err
  if wrong.sum() <= 0.75 * max_docs:
    assert set(np.flatnonzero(wrong)) <= set(index.tolist())
  # The documents an in-memory run of the same model embeds.
  want = page_payload(tmp_path / 'mem' / 'report.html')
  assert got['docs']['index'] == want['docs']['index']
  assert got['confusion'] == want['confusion']


def test_two_processes_write_the_one_process_report(tmp_path):
  path = noisy_tsv(tmp_path / 'train.tsv', 900, seed=3)
  args = ['--config.features.buckets=8192', '--config.train.epochs=3',
          '--config.train.gradcheck=False', '--config.train.patience=2',
          '--config.data.refit=False', '--config.report.max_docs=50',
          '--config.train.checkpoint_every=0', f'--config.data.train={path}']

  def command(workdir, *extra):
    return [sys.executable, '-m', 'experiments.train', *args,
            f'--workdir={workdir}', *extra]

  one = subprocess.Popen(command(tmp_path / 'one'), cwd=ROOT,
                         env=child_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
  try:
    port = free_port()
    outputs = run_together(
        [command(tmp_path / 'two', f'--coordinator_address=127.0.0.1:{port}',
                 '--num_processes=2', f'--process_id={i}') for i in range(2)],
        child_env(), timeout=300)
    one_err = one.communicate(timeout=300)[1]
  finally:
    if one.poll() is None:
      one.kill()
      one.wait()
  assert one.returncode == 0, one_err[-3000:]
  page = tmp_path / 'two' / 'report.html'
  assert f'report: {page}' in outputs[0]
  got, want = page_payload(page), page_payload(tmp_path / 'one' /
                                               'report.html')
  with open(tmp_path / 'two' / 'results.json') as f:
    results = json.load(f)
  assert results['num_processes'] == 2
  assert 0 < got['errors_total'] < results['num_test']   # a model that errs
  assert results['report_docs'] == len(got['docs']['index']) <= 50
  assert np.sum(got['confusion']) == results['num_test'] == want['docs_total']
  assert got['confusion'] == want['confusion']
  assert got['confusion'] == results['test_report']['confusion_matrix']
  # Gathered from both processes: the 1-process run's documents and texts.
  assert got['docs']['index'] == want['docs']['index']
  assert got['docs']['text'] == want['docs']['text']
  with open(tmp_path / 'one' / 'test_split.jsonl', encoding='utf-8') as f:
    test_texts = [json.loads(line)['text'] for line in f]
  assert got['docs']['text'] == [test_texts[i] for i in got['docs']['index']]


def test_two_processes_write_the_one_process_multi_label_report(tmp_path):
  from test_multilabel_runner import _write_fasttext  # pylint: disable=g-import-not-at-top
  train_path = _write_fasttext(tmp_path / 'train.txt', 300, 5, noise=0.35)
  test_path = _write_fasttext(tmp_path / 'test.txt', 90, 6, noise=0.35)
  args = ['--config=experiments/configs/multilabel.py',
          '--config.features.buckets=8192', '--config.train.epochs=3',
          '--config.train.gradcheck=False', '--config.report.max_docs=40',
          '--config.train.checkpoint_every=0',
          f'--config.data.train={train_path}',
          f'--config.data.test={test_path}']

  def command(workdir, *extra):
    return [sys.executable, '-m', 'experiments.train', *args,
            f'--workdir={workdir}', *extra]

  run_together([command(tmp_path / 'one')], child_env(), timeout=300)
  port = free_port()
  run_together(
      [command(tmp_path / 'two', f'--coordinator_address=127.0.0.1:{port}',
               '--num_processes=2', f'--process_id={i}') for i in range(2)],
      child_env(), timeout=300)
  got = page_payload(tmp_path / 'two' / 'report.html')
  want = page_payload(tmp_path / 'one' / 'report.html')
  assert got['kind'] == 'multi' and got['docs_total'] == 90
  assert 0 < got['errors_embedded'] < len(got['docs']['index']) <= 40
  for key in ('per_class', 'errors_total', 'errors_embedded'):
    assert got[key] == want[key], key
  assert got['metrics']['micro_f1'] == want['metrics']['micro_f1']
  assert got['docs']['index'] == want['docs']['index']
  assert got['docs']['text'] == want['docs']['text']
  assert got['docs']['true'] == want['docs']['true']
