"""Class templates for the report: each class's strongest features, named.

Host numpy. Shapes: F features, C classes, k features listed per class and
sign.

Column ``W[:, c]`` is class c's template. The report lists, per class, the
k features of largest weight (what pulls a document towards c) and the k of
smallest (what pushes it away), with readable names: a vocabulary entry is
its n-gram; a hash bucket is named by the n-grams seen in it in training,
most frequent first, marked as a collision when more than one n-gram fell
into it (its weight then serves them all).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# `Featurizer.feature_name` joins a bucket's training n-grams with this.
_NAME_SEPARATOR = ' | '


def feature_names(featurizer, feature_ids) -> list[dict]:
  """Readable names of features.

  Args:
    featurizer: the fitted featuriser.
    feature_ids: int [K].

  Returns:
    K dicts: ``names`` (the n-grams, most frequent first; empty for a
    bucket no training n-gram fell into), ``collision`` (bool: several
    n-grams share the feature) and, from ``Featurizer.bucket_names``,
    ``counts`` (each name's training occurrences) and ``distinct`` (how
    many distinct training n-grams fell into the bucket).
  """
  ids = np.asarray(feature_ids, np.int64)
  bucket_names = getattr(featurizer, 'bucket_names', None)
  if bucket_names is not None:   # one call for every id: it is cached
    return [dict(names=list(content.names), counts=list(content.counts),
                 collision=content.num_distinct > 1,
                 distinct=int(content.num_distinct))
            for content in bucket_names(ids)]
  out = []   # featurisers without `bucket_names`: 'a | b | c' names
  for name in featurizer.feature_names(ids):
    if not featurizer.hashing:
      out.append(dict(names=[name], collision=False))
    elif name.startswith('<bucket '):
      out.append(dict(names=[], collision=False))
    else:
      names = name.split(_NAME_SEPARATOR)
      out.append(dict(names=names, collision=len(names) > 1))
  return out


def top_rows(W, k: int) -> tuple[np.ndarray, np.ndarray]:
  """The k largest and k smallest entries of each column of ``W``.

  Only the rows with a non-zero weight are searched (most hash buckets of
  a large table are never touched).

  Args:
    W: [F, C].
    k: entries per column and sign.

  Returns:
    (positive, negative): int64 [C, k'] row ids, k' <= k, ordered from the
    largest (resp. smallest) weight; entries of the wrong sign (or 0) are
    marked -1.
  """
  W = np.asarray(W)
  rows = np.flatnonzero(np.any(W != 0, axis=1))
  sub = W[rows]
  kk = min(k, rows.shape[0])
  num_classes = W.shape[1]
  if kk == 0:
    empty = np.zeros((num_classes, 0), np.int64)
    return empty, empty
  out = []
  for sign in (1.0, -1.0):
    scores = -sign * sub          # smallest first = largest signed weight
    if kk < rows.shape[0]:
      part = np.argpartition(scores, kk - 1, axis=0)[:kk]     # [kk, C]
    else:
      part = np.broadcast_to(np.arange(rows.shape[0])[:, None],
                             (rows.shape[0], num_classes))
    vals = np.take_along_axis(scores, part, axis=0)
    order = np.argsort(vals, axis=0, kind='stable')
    part = np.take_along_axis(part, order, axis=0)
    vals = np.take_along_axis(vals, order, axis=0)
    ids = np.where(vals < 0, rows[part], -1)
    out.append(ids.T.astype(np.int64))
  return out[0], out[1]


def class_templates(W, b, featurizer, label_names: Sequence[str],
                    k: int = 12) -> list[dict]:
  """Each class's top positive and negative features, named.

  Args:
    W: [F, C] weights; b: [C] biases.
    featurizer: the fitted featuriser (names).
    label_names: the C names.
    k: features per class and sign.

  Returns:
    C dicts ``{'label', 'bias', 'positive', 'negative'}``; ``positive`` and
    ``negative`` are lists of ``{'id', 'weight', 'names', 'collision'}``
    (`feature_names`), strongest first.
  """
  W = np.asarray(W)
  b = np.asarray(b)
  positive, negative = top_rows(W, k)
  wanted = np.unique(np.concatenate([positive.ravel(), negative.ravel()]))
  wanted = wanted[wanted >= 0]
  named = dict(zip(wanted.tolist(), feature_names(featurizer, wanted)))
  out = []
  for c, label in enumerate(label_names):
    entry = dict(label=str(label), bias=round(float(b[c]), 4))
    for key, ids in (('positive', positive[c]), ('negative', negative[c])):
      entry[key] = [dict(id=i, weight=round(float(W[i, c]), 4), **named[i])
                    for i in ids.tolist() if i >= 0]
    out.append(entry)
  return out
