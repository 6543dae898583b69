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
    largest (resp. smallest) weight, equal weights by row id; entries of
    the wrong sign (or 0) are marked -1.
  """
  W = np.asarray(W)
  # Rows with a non-zero weight: one pass of W against itself (a weight
  # whose square underflows, under 1e-19 in float32, counts as 0).
  rows = np.flatnonzero(np.einsum('ij,ij->i', W, W))
  sub = np.ascontiguousarray(W[rows].T)                  # [C, R]
  num_rows = rows.shape[0]
  kk = min(k, num_rows)
  if kk == 0:
    empty = np.zeros((W.shape[1], 0), np.int64)
    return empty, empty
  # Partial sorts per class: the kk smallest, then the kk largest (two
  # single-kth partitions beat one with two kth by 2-3x here).
  if 2 * kk < num_rows:
    part = np.concatenate([np.argpartition(sub, kk - 1, axis=1)[:, :kk],
                           np.argpartition(-sub, kk - 1, axis=1)[:, :kk]],
                          axis=1)
  else:
    part = np.broadcast_to(np.arange(num_rows), sub.shape)
  vals = np.take_along_axis(sub, part, axis=1)
  out = []
  for sign in (1.0, -1.0):   # strongest first; equal weights by feature id
    order = np.lexsort((part, -sign * vals), axis=-1)[:, :kk]
    ids = rows[np.take_along_axis(part, order, axis=1)]
    strength = sign * np.take_along_axis(vals, order, axis=1)
    out.append(np.where(strength > 0, ids, -1).astype(np.int64))
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
      entry[key] = [dict(id=i, weight=float(W[i, c]), **named[i])
                    for i in ids.tolist() if i >= 0]
    out.append(entry)
  return out


def as_top_features(templates: Sequence[dict], k: int = 10) -> list[dict]:
  """`interpret.top_features`'s form of `class_templates`' positive side.

  Args:
    templates: `class_templates`' list.
    k: features per class (at most the templates' own k).

  Returns:
    C dicts ``{'label': name, 'features': [(name, weight), ...]}``, the
    largest weights first; a feature's name is its n-grams joined with
    ``' | '`` (``'<bucket ID>'`` if none), as ``Featurizer.feature_name``.
  """
  return [dict(label=t['label'], features=[
      (_NAME_SEPARATOR.join(f['names']) or f'<bucket {f["id"]}>',
       f['weight']) for f in t['positive'][:k]]) for t in templates]
