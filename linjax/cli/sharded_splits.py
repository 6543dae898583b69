"""A multi-process run's data: each process's part of the 1-process splits.

`load(config, group)` is `run_data.load_splits` for process i of P (see
linjax/cli/multiprocess_run.py): it reads only this process's shard of
``data.train`` (and of ``data.test``), gathers the labels, and keeps this
process's documents of the splits a single process would carve. With
``train.loss=sigmoid`` (multi-label, linjax/cli/multilabel_run.py) the
labels are tag sets: the label map is the union of every process's tags,
the splits are `multilabel_split`'s of the whole multi-hot matrix, and a
test tag never seen in training is dropped, as on one process.
"""

from __future__ import annotations

import numpy as np

from linjax.cli import run_data


def _read_part(path: str, dc, group, multi=None):
  """This process's documents of file or glob ``path`` (a `Dataset`), with
  the whole file's line numbers in its sources and errors; ``multi``: the
  readers' `LabelSets` of a multi-label run."""
  from linjax.data import readers  # pylint: disable=g-import-not-at-top
  from linjax.data import shards  # pylint: disable=g-import-not-at-top
  from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
  first_line = None
  if not shards.is_glob(path):
    with group.agreed():   # the newlines before each part, counted by its reader
      fmt = dc.format or readers.infer_format(path)
      lines = 0
      if fmt in shards.LINE_FORMATS:
        lines = shards.count_lines(
            path, *shards.byte_range(path, group.index, group.count))
    counts, _ = distributed.all_concat(np.array([lines], np.int64))
    first_line = 1 + int(counts[:group.index].sum())
  with group.agreed():
    return shards.read_shard(path, dc.format, group.index, group.count,
                             text_column=dc.text_column,
                             label_column=dc.label_column,
                             lenient=bool(dc.lenient), multi=multi,
                             first_line=first_line)


def _demo_block(dc, seed: int, group):
  """The demo corpus (small: every process reads it) and its block of
  documents for this process."""
  from linjax.data import demo  # pylint: disable=g-import-not-at-top
  from linjax.data.readers import Dataset  # pylint: disable=g-import-not-at-top
  corpus = demo.demo_corpus(max_per_class=dc.max_per_class or None, seed=seed)
  n = len(corpus.texts)
  lo, hi = group.index * n // group.count, (group.index + 1) * n // group.count
  return Dataset(*(column[lo:hi] for column in corpus))


def _label_map(labels, group, multi: bool = False):
  """The union of every process's labels (of their tags when ``multi``),
  sorted (`LabelMap.fit`, `LabelMap.fit_multi`)."""
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
  if multi:
    labels = [tag for tags in labels for tag in tags]
  mine = '\0'.join(sorted(set(map(str, labels)))).encode('utf-8')
  every, bounds = distributed.all_concat(np.frombuffer(mine, np.uint8))
  names = set()
  for p in range(group.count):
    part = bytes(every[bounds[p]:bounds[p + 1]]).decode('utf-8')
    names.update(part.split('\0') if part else ())
  return data.LabelMap.fit(names)


def load(config, group) -> run_data.Splits:
  """This process's part of each split `run_data.load_splits` makes.

  Raises (on every process, see `Group.agreed`):
    DataError: an unreadable part, a bad line, no documents, fewer than two
      classes, or a test label that training never saw.
  """
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
  dc, seed = config.data, int(config.train.seed)
  multi = multilabel_run.is_multilabel(config)
  label_sets = None
  if multi:
    multilabel_run.require_train_file(dc)
    with group.agreed():
      label_sets = data.label_sets(
          dc.train, dc.format or data.infer_format(dc.train), True,
          dc.label_separator, dc.allow_unlabeled, dc.max_per_class)
  if dc.train:
    part, source = _read_part(dc.train, dc, group, label_sets), dc.train
  else:
    part, source = _demo_block(dc, seed, group), 'demo corpus'
  label_map = _label_map(part.labels, group, multi)
  if label_map.num_classes < 2:
    raise data.DataError('no documents.' if not label_map.num_classes else
                         f'only one class ({label_map.names[0]!r}); a '
                         'classifier needs at least two.', path=source)
  if multi:   # multi-hot rows [n, C], gathered flat
    y_mine = label_map.encode_multi(part.labels, part.sources)
    y, bounds = distributed.all_concat(y_mine.reshape(-1))
    y = y.astype(np.uint8).reshape(-1, label_map.num_classes)
    bounds = bounds // label_map.num_classes
  else:
    y_mine = label_map.encode(part.labels, part.sources)
    y, bounds = distributed.all_concat(y_mine)
    y = y.astype(np.int32)
  keep = np.arange(y.shape[0])
  if dc.train and dc.max_per_class:   # the 1-process cap, by global index
    capped = data.cap_per_class(
        data.Dataset(keep.tolist(), label_map.decode(y), [''] * y.shape[0]),
        int(dc.max_per_class), seed, source)
    keep = np.asarray(capped.texts, np.int64)
    y = y[keep]
  lo, hi = bounds[group.index], bounds[group.index + 1]
  mine = np.flatnonzero((keep >= lo) & (keep < hi))   # in keep's numbering
  texts = [part.texts[i - lo] for i in keep[mine].tolist()]
  local_y = y[mine]
  first = int(mine[0]) if mine.size else int(np.searchsorted(keep, lo))

  test = None
  if dc.test:
    test_part = _read_part(dc.test, dc, group, label_sets)
    with group.agreed():
      test = (test_part.texts, multilabel_run.encode_test(
          label_map, test_part.labels, dc.test) if multi else
              label_map.encode(test_part.labels, test_part.sources))
  # The 1-process splits, as global indices; then this process's documents.
  train_idx, val_idx, test_idx = run_data.carve_indices(
      y, dc, seed, data.multilabel_split if multi else data.stratified_split,
      test is not None)

  def own(indices):
    at = np.asarray(indices, np.int64)
    return at[(at >= first) & (at < first + len(texts))] - first

  train, val = own(train_idx), own(val_idx)
  if test is None:
    held = own(test_idx)
    test = ([texts[i] for i in held.tolist()], local_y[held])
  return run_data.Splits(
      train_texts=[texts[i] for i in train.tolist()], train_y=local_y[train],
      val_texts=[texts[i] for i in val.tolist()], val_y=local_y[val],
      test_texts=test[0],
      test_y=np.asarray(test[1], np.uint8 if multi else np.int32),
      label_map=label_map, source=source)
