"""Labelled corpora on the host: read_corpus, label map, stratified split.

numpy only, no JAX. `read_corpus` reads TSV, CSV, JSONL, fastText
(``__label__X text``), a folder with one sub-folder per class, or a folder of
fortune files, into a `Dataset` of parallel lists. Every document keeps its
source (``'train.tsv:17'``) so later errors can point at the file and line.
Bad input raises `DataError` naming the file and line and saying how to fix it;
with ``lenient=True`` bad lines are skipped, counted and logged instead. The
per-format readers, `Dataset` and `DataError` live in `linjax.readers` and are
re-exported here.

Multi-label corpora (``read_corpus(..., multi_label=True)``) give each
document a tuple of labels; `LabelMap.fit_multi` / `encode_multi` turn them
into a multi-hot uint8 [N, C] for the sigmoid loss, and `multilabel_split`
holds out a seeded share stratified by each document's rarest label.
"""

from __future__ import annotations

import collections
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from linjax.data import readers
# The readers' public names, re-exported: callers reach them as `data.X`.
from linjax.data.readers import FORMATS
from linjax.data.readers import DataError
from linjax.data.readers import Dataset
from linjax.data.readers import infer_format
from linjax.data.readers import LabelSets

logger = logging.getLogger(__name__)


def read_corpus(path, format: str = '',  # pylint: disable=redefined-builtin
                text_column: str = 'text', label_column: str = 'label', lenient: bool = False,
                max_per_class: int = 0, seed: int = 0,
                multi_label: bool = False, label_separator: str = ',',
                allow_unlabeled: bool = False) -> Dataset:
  """Reads a labelled corpus.

  Args:
    path: a file (tsv, csv, jsonl, fasttext), a folder (folder, fortune) or
      one fortune file (format='fortune'; its name is the label).
    format: one of `FORMATS`; empty: `infer_format`.
    text_column: the text column (TSV header, CSV header, JSONL field).
    label_column: the label column, likewise.
    lenient: skip bad lines (counted and logged) instead of raising.
    max_per_class: keep at most this many documents per class (0: all),
      chosen at random with ``seed``, in file order (single-label only).
    seed: seed of that choice.
    multi_label: each document has a tuple of labels (several
      ``__label__`` prefixes in fastText, a separated TSV/CSV label field,
      a JSONL list; see `linjax.data.readers`).
    label_separator: multi-label: what separates labels in a TSV/CSV field.
    allow_unlabeled: multi-label: a line with no label is a document with
      no tags (the empty tuple) instead of an error.

  Returns:
    A `Dataset` of N documents (labels: str, or tuples of str).

  Raises:
    DataError: naming the file and line of the first bad input.
  """
  path = Path(os.path.expanduser(str(path)))
  if not path.exists():
    raise DataError('no such file or folder.', path=path,
                    fix='check the path (a file, or a folder of class '
                    'sub-folders or fortune files).')
  fmt = format.lower() or infer_format(path)
  if fmt not in FORMATS:
    raise DataError(f'unknown format {fmt!r}.', path=path,
                    fix=f'set data.format to one of {", ".join(FORMATS)}.')
  if fmt != 'fortune' and (fmt == 'folder') != path.is_dir():
    raise DataError(f'format {fmt!r} needs a '
                    f'{"folder" if fmt == "folder" else "file"}.',
                    path=path, fix='check data.format.')
  multi = label_sets(path, fmt, multi_label, label_separator,
                     allow_unlabeled, max_per_class)
  data = readers.read(path, fmt, text_column, label_column, lenient, multi)
  if max_per_class:
    data = cap_per_class(data, max_per_class, seed, str(path))
  return data


def label_sets(path, fmt: str, multi_label: bool, label_separator: str = ',',
               allow_unlabeled: bool = False,
               max_per_class: int = 0) -> LabelSets | None:
  """The readers' multi-label settings (None: single-label), or DataError
  naming ``path`` for settings that cannot go together."""
  if not multi_label:
    if allow_unlabeled:
      raise DataError('allow_unlabeled needs multi_label=True (a '
                      'single-label document needs its class).', path=path,
                      fix='set data.multi_label=True or drop '
                      'allow_unlabeled.')
    return None
  if not label_separator or (fmt == 'tsv' and '\t' in label_separator):
    raise DataError(f'label separator {label_separator!r} cannot split a '
                    'label field.', path=path, fix='set '
                    'data.label_separator to e.g. "," or "|".')
  if max_per_class:
    raise DataError('max_per_class applies to single-label corpora.',
                    path=path, fix='set data.max_per_class=0 with '
                    'multi_label.')
  return LabelSets(label_separator, bool(allow_unlabeled))


def cap_per_class(data: Dataset, max_per_class: int, seed: int = 0,
                  name: str = 'corpus') -> Dataset:
  """At most ``max_per_class`` documents per class (seeded), in input order."""
  if max_per_class < 0:
    raise ValueError(f'data.max_per_class must be >= 0, got {max_per_class}')
  if not max_per_class:
    return data
  if data.labels and isinstance(data.labels[0], tuple):
    raise ValueError('data.max_per_class applies to single-label corpora.')
  labels = np.asarray(data.labels)
  rng = np.random.default_rng(seed)
  keep, capped = [], []
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    if members.shape[0] > max_per_class:
      capped.append(f'{label} {members.shape[0]}->{max_per_class}')
      members = rng.choice(members, max_per_class, replace=False)
    keep.append(members)
  if not capped:
    return data
  keep = np.sort(np.concatenate(keep)).tolist()
  logger.info('%s: capped classes at %d documents each (seed %d): %s', name,
              max_per_class, seed, ', '.join(capped))
  return Dataset(*([column[i] for i in keep] for column in data))


def rare_classes(labels, min_count: int = 5) -> dict:
  """Classes with fewer than ``min_count`` documents, for a warning.

  A class seen a handful of times in training gets an unreliable template,
  and often comes from a typo or a label of another type (``3`` beside
  ``"3"``); a runner should log these before training.

  Args:
    labels: [N] class labels (names or int ids) of the training documents.
    min_count: the smallest count that is not rare (>= 1).

  Returns:
    {label: count} of the rare classes, rarest first (ties by label).
  """
  if int(min_count) < 1:
    raise ValueError(f'rare_classes: min_count must be >= 1, got {min_count}')
  if isinstance(labels, np.ndarray):
    labels = labels.tolist()
  # Counted as they come (np.asarray of 2.9 M names made a fixed-width
  # unicode array and a list of new strings: +300 MB at healthtweets x64);
  # numpy scalars count as the Python values they hold.
  counts = collections.Counter()
  for label, n in collections.Counter(labels).items():
    counts[label.item() if isinstance(label, np.generic) else label] += n
  rare = sorted((n, label) for label, n in counts.items() if n < min_count)
  return {label: n for n, label in rare}


class LabelMap:
  """Class names <-> ids 0..C-1 (sorted names, so the map is reproducible)."""

  def __init__(self, names: Iterable[str]):
    self.names = [str(n) for n in names]
    self._index = {n: i for i, n in enumerate(self.names)}
    if len(self._index) != len(self.names):
      raise ValueError('LabelMap: duplicate label names.')

  @classmethod
  def fit(cls, labels: Iterable[str]) -> LabelMap:
    """The sorted distinct labels."""
    return cls(sorted(set(labels)))

  @property
  def num_classes(self) -> int:
    return len(self.names)

  @classmethod
  def fit_multi(cls, label_sets: Iterable[Sequence[str]]) -> LabelMap:
    """The sorted distinct labels of multi-label documents."""
    return cls(sorted({label for tags in label_sets for label in tags}))

  def encode_multi(self, label_sets: Sequence[Sequence[str]],
                   sources: Sequence[str] | None = None,
                   unknown: str = 'error') -> np.ndarray:
    """uint8 [N, C] multi-hot: ``Y[i, c] = 1`` iff document i has label c.

    ``unknown`` says what a label unseen in training does: 'error' raises
    DataError naming the document's source; 'ignore' drops it (what
    fastText's ``test`` does; the runner should log how many it dropped,
    see `unknown_labels`).
    """
    if unknown not in ('error', 'ignore'):
      raise ValueError(f"encode_multi: unknown must be 'error' or 'ignore', "
                       f'got {unknown!r}.')
    flat = [label for tags in label_sets for label in tags]
    doc = np.repeat(np.arange(len(label_sets)),
                    [len(tags) for tags in label_sets]).astype(np.int64)
    if unknown == 'error':   # DataError naming the first unknown's source
      ids = self.encode(flat, None if sources is None else
                        [sources[i] for i in doc.tolist()]).astype(np.int64)
    else:
      ids = np.asarray([self._index.get(label, -1) for label in flat],
                       np.int64)
    keep = ids >= 0
    Y = np.zeros((len(label_sets), self.num_classes), np.uint8)
    Y[doc[keep], ids[keep]] = 1
    return Y

  def unknown_labels(self, label_sets: Iterable[Sequence[str]]) -> dict:
    """{label: count} of the labels not in this map (sorted by label)."""
    counts = collections.Counter(label for tags in label_sets
                                 for label in tags if label not in self._index)
    return dict(sorted(counts.items()))

  def decode_multi(self, Y) -> list[tuple[str, ...]]:
    """Label tuples of a multi-hot (or boolean) [N, C], in label order."""
    Y = np.asarray(Y)
    return [tuple(self.names[c] for c in np.flatnonzero(row)) for row in Y]

  def encode(self, labels: Sequence[str],
             sources: Sequence[str] | None = None) -> np.ndarray:
    """int32 [N] ids; a label unseen in training raises DataError."""
    index = self._index
    ids = [index.get(label, -1) for label in labels]
    if -1 in ids:
      first = ids.index(-1)
      unknown = sorted({l for l, i in zip(labels, ids) if i < 0})
      path, line = None, None
      if sources is not None:
        path, _, number = str(sources[first]).rpartition(':')
        if number.isdigit():
          line = int(number)
        else:
          path = str(sources[first])
      known = ', '.join(map(repr, self.names[:20])) + (
          ', ...' if self.num_classes > 20 else '')
      raise DataError(
          f'label {labels[first]!r} was not seen in training '
          f'({len(unknown)} unknown label(s): '
          f'{", ".join(map(repr, unknown[:5]))}); known labels: {known}.',
          path=path, line=line, fix='train on data that holds every class, '
          'or remove these documents.')
    return np.asarray(ids, np.int32)

  def decode(self, ids) -> list[str]:
    """Class names of int ids [N]."""
    return [self.names[i] for i in np.asarray(ids).tolist()]

  def to_list(self) -> list[str]:
    return list(self.names)

  @classmethod
  def from_list(cls, names: Sequence[str]) -> LabelMap:
    return cls(names)

  def __len__(self) -> int:
    return self.num_classes

  def __repr__(self) -> str:
    return f'LabelMap({self.names!r})'


def multilabel_split(Y, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """`stratified_split` of multi-label documents by their rarest label.

  Each document is put in the stratum of its least frequent label (the
  documents with no label form one stratum of their own), so every label
  with a few documents sends some of them to each side, the usual cheap
  approximation of iterative stratification.

  Args:
    Y: multi-hot [N, C].
    fraction: held-out share, 0 <= fraction < 1.
    seed: seed of the choice.

  Returns:
    (train_idx, held_idx): sorted int64 arrays partitioning range(N).
  """
  Y = np.asarray(Y) > 0
  if Y.ndim != 2:
    raise ValueError(f'multilabel_split: expected a multi-hot [N, C], got '
                     f'shape {Y.shape}.')
  counts = Y.sum(0)
  # Rarest label of each document (ties: the lower id); C for no label.
  rarity = np.where(Y, counts[None, :], np.iinfo(np.int64).max)
  stratum = np.where(Y.any(1), rarity.argmin(1), Y.shape[1])
  return stratified_split(stratum, fraction, seed)


def stratified_split(labels, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Seeded stratified split of indices.

  Each class of n documents sends ``round(fraction * n)`` of them to the
  held-out side, but at least one to each side when n >= 2 and fraction > 0
  (a class of one stays in train).

  Args:
    labels: [N] class labels (ints or strings).
    fraction: held-out share, 0 <= fraction < 1 (0: nothing held out).
    seed: seed of the choice.

  Returns:
    (train_idx, held_idx): sorted int64 arrays partitioning range(N).
  """
  fraction = float(fraction)
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f'split fraction must be in [0, 1), got {fraction}')
  labels = np.asarray(labels)
  held = []
  if fraction > 0 and labels.shape[0]:
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    by_class = np.argsort(inverse, kind='stable')
    bounds = np.cumsum(np.bincount(inverse, minlength=classes.shape[0]))
    for members in np.split(by_class, bounds[:-1]):
      n = members.shape[0]
      if n < 2:
        continue
      take = min(max(int(round(fraction * n)), 1), n - 1)
      held.append(rng.permutation(members)[:take])
  held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
  mask = np.ones(labels.shape[0], bool)
  mask[held] = False
  return np.flatnonzero(mask).astype(np.int64), held.astype(np.int64)
