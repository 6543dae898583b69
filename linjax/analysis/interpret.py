"""What a trained linear model looks at: class templates and explanations.

Shapes: F features, C classes, K items.

Column ``W[:, c]`` is class c's template (the lecture's w_c): the score of
class c is the dot product of the template with the document's bag-of-words,
plus ``b[c]``. `top_features` reads the largest template weights back as
words/n-grams through ``featurizer.feature_name``; `explain` splits one
document's scores into one contribution per n-gram, ``weight * W[id, :]``,
which with the bias add up exactly to the logits.

Note that softmax ignores a vector added to every template, so raw weights
are relative: a feature matters for class c by how much its ``W[id, c]``
exceeds its weights in the other classes.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np


def _names(label_names, num_classes: int) -> list[str]:
  if label_names is None:
    return [str(c) for c in range(num_classes)]
  names = [str(n) for n in (label_names.names if hasattr(label_names, 'names')
                            else label_names)]
  if len(names) != num_classes:
    raise ValueError(f'{len(names)} label names for {num_classes} classes.')
  return names


def top_features(params, featurizer, label_names=None, k: int = 10,
                 largest: bool = True) -> list[dict]:
  """The k features with the largest (or smallest) weight in each template.

  Args:
    params: Params with W [F, C], b [C].
    featurizer: the fitted Featurizer (for ``feature_name``).
    label_names: C names, or a LabelMap (default '0'..'C-1').
    k: features per class.
    largest: True for the most positive weights, False for the most negative.

  Returns:
    C dicts ``{'label': name, 'features': [(feature name, weight), ...]}``
    ordered by weight (descending if ``largest``, ascending otherwise);
    features with weight exactly 0 are left out.

  Only the rows of W with a non-zero weight are searched (hashed features:
  most of the 2^20 rows are zero), and every feature's name is asked for in
  one ``featurizer.feature_names`` call (hash buckets are named by one pass
  over the training texts for all of them).
  """
  W = np.asarray(params.W, np.float32)
  num_classes = W.shape[1]
  names = _names(label_names, num_classes)
  rows = np.flatnonzero(np.any(W != 0, axis=1))
  sub = W[rows] if largest else -W[rows]          # [R, C]
  k = max(0, min(k, rows.shape[0]))
  picked = []
  for c in range(num_classes):
    col = sub[:, c]
    idx = (np.argpartition(-col, k - 1)[:k] if k < col.shape[0]
           else np.arange(col.shape[0]))
    idx = idx[np.argsort(-col[idx], kind='stable')]
    picked.append(idx[col[idx] > 0])
  ids = rows[np.concatenate(picked)] if picked else np.zeros(0, np.int64)
  feature_names = iter(featurizer.feature_names(ids) if ids.size else [])
  return [dict(label=names[c], features=[
      (next(feature_names), float(W[rows[i], c])) for i in idx])
          for c, idx in enumerate(picked)]


def format_top_features(top: Sequence[dict], k: int = 5) -> str:
  """One line per class: ``label: feat (weight), ...``."""
  return '\n'.join(
      f'  {t["label"]}: ' + ', '.join(f'{name} ({w:+.2f})'
                                      for name, w in t['features'][:k])
      for t in top)


@dataclasses.dataclass
class Explanation:
  """One document's class scores, split by n-gram.

  items: K dicts with ``ngram`` (str), ``feature_id`` (int), ``weight``
    (float, the feature value after weighting/normalisation) and
    ``contributions`` (float [C], ``weight * W[feature_id]``).
  bias: float [C].
  logits: float [C] ``sum of contributions + bias``.
  probs: float [C] softmax of the logits.
  label_names: C names.
  """

  items: list
  bias: np.ndarray
  logits: np.ndarray
  probs: np.ndarray
  label_names: list

  @property
  def predicted(self) -> int:
    return int(np.argmax(self.logits))

  def top_items(self, label: int | None = None, k: int = 10) -> list[dict]:
    """The k items with the largest contribution to class ``label``.

    ``label`` defaults to the predicted class.
    """
    c = self.predicted if label is None else int(label)
    return sorted(self.items, key=lambda it: -it['contributions'][c])[:k]

  def format(self, k: int = 8) -> str:
    """A short text report: prediction, probability, top contributions."""
    c = self.predicted
    lines = [f'predicted {self.label_names[c]} (p={self.probs[c]:.3f}); '
             f'bias {self.bias[c]:+.3f}']
    for it in self.top_items(c, k):
      lines.append(f'  {it["contributions"][c]:+.4f}  {it["ngram"]}')
    return '\n'.join(lines)


def explain(params, featurizer, text: str, label_names=None) -> Explanation:
  """Each n-gram's contribution to each class score of one document.

  Uses ``featurizer.analyze(text)``: (n-gram, feature id, weight) triples
  whose ``sum(weight * W[id]) + b`` equals `linjax.logits` of the
  transformed document.

  Args:
    params: Params with W [F, C], b [C].
    featurizer: the fitted Featurizer.
    text: one raw document.
    label_names: C names, or a LabelMap.

  Returns:
    An Explanation.
  """
  W = np.asarray(params.W, np.float64)
  b = np.asarray(params.b, np.float64)
  names = _names(label_names, W.shape[1])
  items = []
  total = np.zeros(W.shape[1], np.float64)
  for ngram, feature_id, weight in featurizer.analyze(text):
    contributions = float(weight) * W[int(feature_id)]
    total += contributions
    items.append(dict(ngram=ngram, feature_id=int(feature_id),
                      weight=float(weight), contributions=contributions))
  logits = total + b
  shifted = np.exp(logits - logits.max())
  return Explanation(items=items, bias=b, logits=logits,
                     probs=shifted / shifted.sum(), label_names=names)
