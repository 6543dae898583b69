"""The out-of-core runner (experiments/stream_data.py, stream_run.py) and the
on-disk corpus it trains from (linjax/text/csr_store.py).

References: the in-memory runner on the same files and config (the model
must be equal bit for bit, the splits the same indices), `CsrFeatures.take`
for the store's reads, `Featurizer.fit_transform` for the chunked fit.
"""

import json
import os

import numpy as np
import pytest
import safetensors.numpy

from linjax.cli import run_data
from linjax.cli import stream_data
from linjax.cli import stream_run
from linjax.cli import train
from linjax.cli.configs import default
from linjax.data import corpus
from linjax.text import chunked_fit
from linjax.text import csr
from linjax.text.csr_store import CsrStore
from linjax.text.featurizer import Featurizer
from linjax.text.featurizer_options import FeaturizerOptions


def _random_csr(rng, n, f=40):
  rows = []
  for _ in range(n):
    ids = np.unique(rng.integers(0, f, rng.integers(0, 7)))
    rows.append((ids, rng.random(ids.shape[0])))
  return csr.from_rows(rows, f)


def _equal(a, b):
  return all(np.array_equal(p, q) for p, q in zip(a[:3], b[:3]))


@pytest.mark.parametrize('read_entries', [1, 9, 1 << 20])
def test_store_reads_equal_take(tmp_path, read_entries):
  rng = np.random.default_rng(0)
  x = _random_csr(rng, 300)
  store = CsrStore(40, parent=str(tmp_path))
  for lo in range(0, 300, 41):   # appended in uneven chunks, one empty
    store.append(x.take(np.arange(lo, min(lo + 41, 300))))
  store.append(x.take(np.arange(0)))
  np.testing.assert_array_equal(store.indptr, x.indptr)
  assert store.nnz == x.nnz and store.num_docs == 300
  rows = np.concatenate([rng.permutation(300), [7, 7, 0]])   # with repeats
  bounds = [0, 50, 50, 299, 303]
  parts = list(store.take_chunks(rows, bounds, read_entries=read_entries))
  assert len(parts) == 4
  for part, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
    assert _equal(part, x.take(rows[lo:hi]))
  assert _equal(store.take([5, 3, 299, 3]), x.take([5, 3, 299, 3]))
  assert _equal(csr.concatenate([p for _, p in store.chunks(17)]), x)
  folder = store.folder
  store.close()
  assert not os.path.exists(folder)


def test_chunked_fit_equals_fit_transform():
  texts = [f'Flu shot {i % 7} for the CDC , said {i % 3} NHS' for i in
           range(60)] + ['one-off words here'] * 3
  options = FeaturizerOptions(buckets=1 << 12, min_df=2)
  whole = Featurizer.from_options(options)
  expected = whole.fit_transform(texts)
  counter = chunked_fit.counting_featurizer(options)
  df = chunked_fit.DocumentFrequencies(options.buckets)
  counts = [counter.transform(texts[lo:lo + 10]) for lo in range(0, 63, 10)]
  for part in counts:
    df.add(part)
  fitted = chunked_fit.fitted_featurizer(options, df, texts[:10])
  got = csr.concatenate(chunked_fit.weigh(options, c, df) for c in counts)
  assert _equal(got, expected)
  assert _equal(fitted.transform(texts), expected)


def _corpus(path, n, seed, classes=('a', 'b', 'c')):
  rng = np.random.default_rng(seed)
  words = {c: [f'{c}{k}' for k in range(30)] + ['the', 'of', 'and']
           for c in classes}
  with open(path, 'w', encoding='utf-8') as f:
    f.write('label\ttext\n')
    for _ in range(n):
      c = classes[rng.integers(len(classes))]
      f.write(c + '\t' + ' '.join(rng.choice(words[c], rng.integers(3, 12)))
              + '\n')


def _config(train_path, test_path='', max_host_mb=0):
  config = default.get_config()
  config.data.train, config.data.test = str(train_path), str(test_path)
  config.train.epochs = 2
  config.train.gradcheck = False
  config.train.max_host_mb = max_host_mb
  config.optimizer.learning_rate = 2.0
  # A streamed run does not refit on train + validation (linjax/cli/
  # refit.py): it equals the in-memory run without the refit.
  config.data.refit = False
  return config


def _arrays(workdir):
  return safetensors.numpy.load_file(
      os.path.join(workdir, 'model', 'arrays.safetensors'))


def test_split_indices_are_the_in_memory_runners():
  y = np.random.default_rng(3).integers(0, 4, 500).astype(np.int32)
  config = _config('x')
  texts = [str(i) for i in range(500)]
  for test in (None, (['t'], np.zeros(1, np.int32))):
    splits = run_data.carve_splits(texts, y, test, config.data, 5,
                                   corpus.stratified_split, None, 'x')
    train_idx, val_idx, test_idx = stream_data.split_indices(
        y, config.data, 5, test is not None)
    assert splits.train_texts == [str(i) for i in train_idx]
    assert splits.val_texts == [str(i) for i in val_idx]
    if test is None:
      assert splits.test_texts == [str(i) for i in test_idx]


def test_streamed_run_equals_in_memory_run(tmp_path):
  path = tmp_path / 'train.tsv'
  _corpus(path, 2500, seed=0)
  assert os.path.getsize(path) * stream_data.BYTES_PER_FILE_BYTE > 1 << 20
  memory = train.train_and_evaluate(_config(path), str(tmp_path / 'mem'))
  assert 'streamed' not in memory
  # Forced by a small budget, through the runner's own entry point.
  streamed = train.train_and_evaluate(_config(path, max_host_mb=1),
                                      str(tmp_path / 'str'))
  assert streamed['streamed']
  a, b = _arrays(tmp_path / 'mem'), _arrays(tmp_path / 'str')
  for key in ('W.row_ids', 'W.rows', 'b', 'featurizer/document_frequency/ids',
              'featurizer/document_frequency/counts'):
    np.testing.assert_array_equal(a[key], b[key])
  for key in ('num_train', 'num_val', 'num_test', 'test_accuracy',
              'val_accuracy', 'epochs_run'):
    assert memory[key] == streamed[key], key
  assert streamed['train_loss'] == pytest.approx(memory['train_loss'],
                                                 rel=1e-6)
  with open(tmp_path / 'mem' / 'test_split.jsonl') as f, open(
      tmp_path / 'str' / 'test_split.jsonl') as g:
    assert f.read() == g.read()
  assert not [p for p in os.listdir(tmp_path / 'str')
              if p.startswith('.stream-')]


def test_small_chunks_and_a_test_file_give_the_same_model(tmp_path):
  path, test = tmp_path / 'train.tsv', tmp_path / 'test.tsv'
  _corpus(path, 900, seed=1)
  _corpus(test, 200, seed=2)
  train.train_and_evaluate(_config(path, test), str(tmp_path / 'mem'))
  results = stream_run.train_and_evaluate(_config(path, test),
                                          str(tmp_path / 'str'),
                                          chunk_bytes=2000)
  a, b = _arrays(tmp_path / 'mem'), _arrays(tmp_path / 'str')
  np.testing.assert_array_equal(a['W.rows'], b['W.rows'])
  np.testing.assert_array_equal(a['b'], b['b'])
  with open(tmp_path / 'mem' / 'results.json') as f:
    assert json.load(f)['test_accuracy'] == results['test_accuracy']


def test_a_bad_line_names_the_whole_files_line(tmp_path):
  path = tmp_path / 'train.tsv'
  _corpus(path, 300, seed=4)
  with open(path, 'a', encoding='utf-8') as f:
    f.write('no tab on this line\n')
  with pytest.raises(corpus.DataError, match=r'train.tsv:302'):
    stream_run.train_and_evaluate(_config(path), str(tmp_path / 'w'),
                                  chunk_bytes=1000)


def test_benchmark_replicates_the_training_file(tmp_path):
  from benchmarks import benchmark_worker  # pylint: disable=g-import-not-at-top
  _corpus(tmp_path / 'train.tsv', 400, seed=5)
  lines = (tmp_path / 'train.tsv').read_text().splitlines(keepends=True)
  copy = benchmark_worker.replicate_file(tmp_path / 'train.tsv', 3)
  with open(copy) as f:
    assert f.read() == lines[0] + ''.join(lines[1:]) * 3
  os.remove(copy)


def test_streamed_train_metrics_on_the_same_sample(tmp_path, monkeypatch):
  """A large training split is scored on a uniform sample: the same
  documents out of core (read from the store) as in memory."""
  from linjax.cli import finish_run  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(finish_run, 'TRAIN_EVAL_DOCS', 300)
  path = tmp_path / 'train.tsv'
  _corpus(path, 2500, seed=4)
  memory = train.train_and_evaluate(_config(path), str(tmp_path / 'mem'))
  streamed = train.train_and_evaluate(_config(path, max_host_mb=1),
                                      str(tmp_path / 'str'))
  assert streamed['streamed'] and 'streamed' not in memory
  assert memory['train_eval_docs'] == streamed['train_eval_docs'] == 300
  assert streamed['train_accuracy'] == memory['train_accuracy']
  assert streamed['train_loss'] == pytest.approx(memory['train_loss'],
                                                 rel=1e-6)


def test_streams_above_the_in_memory_cap_whatever_the_host_budget(
    tmp_path, monkeypatch):
  from linjax.cli import config_check  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'train.tsv'
  _corpus(path, 300, seed=5)
  estimate = os.path.getsize(path) * stream_data.BYTES_PER_FILE_BYTE
  config = _config(path, max_host_mb=1 << 20)    # a host budget of 1 TiB
  options = config_check.validate(config)
  monkeypatch.setattr(stream_data, 'IN_MEMORY_MAX_MB',
                      (estimate >> 20) + 1)      # just above the estimate
  assert not stream_data.streams(config, options)
  monkeypatch.setattr(stream_data, 'IN_MEMORY_MAX_MB', 0)
  assert stream_data.streams(config, options)
  config.data.max_per_class = 10                  # then never out of core
  assert not stream_data.streams(config, config_check.validate(config))


def test_names_per_document_read_as_the_list():
  from linjax.cli import stream_run  # pylint: disable=g-import-not-at-top
  names, counts = ['a', 'b', 'c'], [2, 0, 3]
  want = ['a', 'a', 'c', 'c', 'c']
  got = stream_run.NamesPerDocument(names, counts)
  assert list(got) == want and len(got) == 5
  assert [got[i] for i in range(5)] == want and got[-1] == 'c'
  assert got[1:4] == want[1:4]
  with pytest.raises(IndexError):
    got[5]   # pylint: disable=pointless-statement
