"""Checks of a run's labels, before any training: wrong-looking labels stop
the run with the fix to type; rare or absent classes give one bounded line.

* `check_training_labels`: the labels of the training split.
  - Label sets written with another separator: a multi-label TSV whose
    label field is ``role::program use::editing`` read with
    ``data.label_separator=','`` makes each whole string one class (890
    classes for 2,184 documents of debian_tags, macro-F1 0.0068, exit 0).
    When splitting the class names at one of the usual separators (space,
    ``,``, ``;``, ``|``) leaves at most half as many labels, the run stops
    and names ``--config.data.label_separator`` (and, for a single-label
    run, ``--config=multilabel``).
  - Nearly one class per document: at least `MANY_CLASSES` classes and the
    median class has fewer than `MIN_MEDIAN_DOCS` training documents (a
    text or id column read as the label, or label sets): nothing can be
    learnt, so the run stops; ``--config.data.lenient=True`` makes it a
    warning for a corpus that really is like that.
  - `warn_about_labels`: classes with fewer than `RARE_CLASS_DOCS`
    training documents, and classes absent from the test split.
* `check_known_labels`: a model evaluated on data that has none of its
  labels (every mode: single- and multi-label) stops instead of printing
  zeros.

Every list in a message is bounded (`console.bounded_list`): "'a' (1),
'b' (1), ... and 880 more", names cut to `console.NAME_WIDTH` characters.
"""

from __future__ import annotations

import collections
import statistics

from absl import logging

from linjax.cli import console
from linjax.data.readers import DataError

RARE_CLASS_DOCS = 5      # fewer training documents than this: warn
USUAL_SEPARATORS = (' ', ',', ';', '|')
MANY_CLASSES = 20        # this many classes or more, and ...
MIN_MEDIAN_DOCS = 3      # ... a median class with fewer documents: stop


def _flag_value(separator: str) -> str:
  """``' '`` or ``';'`` quoted for a shell, ``,`` as it is."""
  return separator if separator.isalnum() or separator == ',' else (
      f"'{separator}'")


def _shown(separator: str) -> str:
  return 'a space' if separator == ' ' else repr(separator)


def separator_in_names(names, configured: str | None = None):
  """The usual separator that splits ``names`` into at most half as many
  labels, as ``(separator, number of labels, an example name)``, or None.

  Args:
    names: the class names of a run (each a whole label field, or for a
      multi-label run each label after splitting at ``configured``).
    configured: the run's ``data.label_separator`` (multi-label), which is
      not suggested again; None for a single-label run.

  Splitting must collapse the classes (e.g. 890 names into 69 labels):
  names that merely contain a space, as ``'New York'`` beside ``'Los
  Angeles'``, split into as many parts as there are names or more.
  """
  names = [str(n) for n in names]
  if len(names) < 6:
    return None
  best = None
  for sep in USUAL_SEPARATORS:
    if sep == configured:
      continue
    with_sep = [n for n in names if sep in n.strip()]
    if not with_sep:
      continue
    parts = {p.strip() for n in names for p in n.split(sep) if p.strip()}
    if 2 * len(parts) <= len(names) and (best is None or len(parts) < best[1]):
      best = (sep, len(parts), max(with_sep, key=lambda n: n.count(sep)))
  return best


def check_training_labels(train_labels, num_docs: int, loss: str = 'softmax',
                          label_separator: str = ',',
                          lenient: bool = False) -> None:
  """Stops a run whose labels look wrong; warns about rare classes.

  Args:
    train_labels: one class name per (document, label) of the training
      split (a multi-label document gives one name per label).
    num_docs: training documents.
    loss: the run's loss (its table entry says whether it is multi-label).
    label_separator: the run's ``data.label_separator``.
    lenient: ``data.lenient``: the many-classes stop becomes a warning.

  Raises:
    DataError: one line naming the flag to set.
  """
  counts = collections.Counter(str(n) for n in train_labels)
  names = sorted(counts)
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  multilabel = losses.get_loss(loss).multi_label
  found = separator_in_names(names, label_separator if multilabel else None)
  if found:
    sep, num_parts, example = found
    fix = f'--config.data.label_separator={_flag_value(sep)}'
    if not multilabel:
      fix = f'--config=multilabel {fix} (multi-label: a set of labels per document)'
    raise DataError(
        f'{len(names)} classes for {num_docs} training documents, and the '
        f'class names look like label sets separated by {_shown(sep)} (e.g. '
        f'{console.short_name(example)!r}): split there they are '
        f'{num_parts} labels. Fix: {fix}')
  if len(names) >= MANY_CLASSES:
    median = statistics.median(counts.values())
    if median < MIN_MEDIAN_DOCS:
      message = (
          f'{len(names)} classes for {num_docs} training documents: the '
          f'median class has {median:g} document(s), too few to learn from '
          f'(e.g. {console.bounded_list(map(repr, names), 3)}). Check that '
          f'--config.data.label_column (or the first TSV column) holds the '
          f'labels; --config.data.lenient=True trains anyway')
      if not lenient:
        raise DataError(message + '.')
      logging.warning('%s (data.lenient).', message)
  warn_about_labels(train_labels)


def warn_about_labels(train_labels, absent=()) -> None:
  """Warns about rare training classes and classes absent from the test
  split (``absent``: their names), each in one bounded line."""
  from linjax.data import corpus  # pylint: disable=g-import-not-at-top
  rare = corpus.rare_classes(train_labels, RARE_CLASS_DOCS)
  if rare:
    listed = console.bounded_list(
        f'{console.short_name(label)!r} ({n})' for label, n in rare.items())
    logging.warning('%d class%s with fewer than %d training documents: %s. '
                    'Their templates are unreliable; check for typos or '
                    'labels written another way.', len(rare),
                    'es' if len(rare) > 1 else '', RARE_CLASS_DOCS, listed)
  if len(absent):
    logging.warning('%d class%s absent from the test split: %s; macro-F1 '
                    'averages over the classes present.', len(absent),
                    'es' if len(absent) > 1 else '',
                    console.bounded_list(repr(console.short_name(a))
                                         for a in absent))


def check_known_labels(data_labels, model_labels, flag: str = '--data',
                       path: str = '') -> None:
  """Stops an evaluation whose data hold none of the model's labels.

  Args:
    data_labels: the data's labels, one name per (document, label).
    model_labels: the model's class names.
    flag, path: named in the message.

  Raises:
    DataError: naming ``flag``, with examples of both label sets.
  """
  seen = collections.Counter(str(n) for n in data_labels)
  known = set(map(str, model_labels))
  if not seen or any(name in known for name in seen):
    return
  hint = ''
  found = separator_in_names(list(seen))
  if found:
    hint = (f' Its labels look like sets separated by {_shown(found[0])}: '
            f'was the model trained with --config.data.label_separator='
            f'{_flag_value(found[0])}?')
  raise DataError(
      f'{flag}={path}: none of its {len(seen)} labels '
      f'({console.bounded_list(map(repr, seen), 3)}) is one of the model\'s '
      f'{len(known)} ({console.bounded_list(map(repr, model_labels), 3)}); '
      f'every metric would be 0.{hint} Fix: evaluate the model on data '
      f'labelled like its training data.')
