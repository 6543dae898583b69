"""Multi-label metrics on the host (numpy only).

Shapes: N documents, C labels. ``Y`` is a multi-hot [N, C] (any dtype, > 0
means the document has the label); ``scores`` are [N, C] per-label
probabilities (`scoring.predict_proba(..., loss='sigmoid')`) or any scores
that rank the labels the same way.

* Thresholded (a document's predicted set is every label whose probability is
  ``>= threshold``, 0.5 by default): per-label precision, recall and F1
  (`per_label`), their micro average (counts pooled over all labels, what
  ``sklearn.metrics.f1_score(average='micro')`` computes on multi-hot
  arrays) and macro average (the plain mean over the C labels, scikit-learn's
  ``average='macro'``). F1 is ``2 tp / (2 tp + fp + fn)``; where that is 0/0
  (a label neither present nor predicted) it is ``zero_division``, as are a
  precision of nothing predicted and a recall of nothing present: 0.0 by
  default as scikit-learn's ``zero_division=0``; 1.0 gives the definition of
  `benchmarks/peers_multilabel.py` (a label absent and never predicted is
  not an error).
* `tune_threshold`: the threshold of the best micro (or macro) F1 on a
  validation split, from a grid; apply it to the test split unchanged.
* Ranked, as fastText's ``test`` reports them (`precision_recall_at_k`):
  each document predicts its k best labels (those scoring ``>= threshold``
  among them, threshold 0 by default); P@k is the number of correct
  predictions over the number of predictions and R@k the same number over
  the number of true labels, both pooled over the documents. Documents with
  no true label are skipped, as fastText's ``test`` skips lines without a
  known label.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5


def _multi_hot(Y, name: str) -> np.ndarray:
  Y = np.asarray(Y)
  if Y.ndim != 2:
    raise ValueError(f'{name}: expected a multi-hot [N, C], got shape '
                     f'{Y.shape}.')
  return Y > 0


def _pair(Y_true, Y_pred):
  Y_true = _multi_hot(Y_true, 'Y_true')
  Y_pred = _multi_hot(Y_pred, 'Y_pred')
  if Y_true.shape != Y_pred.shape:
    raise ValueError(f'Y_true {Y_true.shape} and Y_pred {Y_pred.shape} '
                     f'differ in shape.')
  return Y_true, Y_pred


def predict_sets(scores, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
  """bool [N, C]: the labels whose score is ``>= threshold``."""
  scores = np.asarray(scores)
  if scores.ndim != 2:
    raise ValueError(f'scores: expected [N, C], got shape {scores.shape}.')
  return scores >= threshold


def ranked_labels(scores, threshold: float = DEFAULT_THRESHOLD,
                  top_k: int | None = None) -> list[np.ndarray]:
  """Per document: the ids of its labels scoring ``>= threshold``, best first.

  Ties keep label-id order. A document with no label at the threshold gets
  an empty array (a document with no tags).

  Args:
    scores: [N, C] per-label probabilities (or scores on the same scale as
      ``threshold``).
    threshold: the cut; 0 keeps every label (then ``top_k`` ranks them).
    top_k: at most this many labels per document (None: all that pass).

  Returns:
    N int arrays, each of at most ``min(C, top_k)`` label ids.
  """
  scores = np.asarray(scores)
  if scores.ndim != 2:
    raise ValueError(f'scores: expected [N, C], got shape {scores.shape}.')
  if top_k is not None and (isinstance(top_k, bool) or
                            not isinstance(top_k, (int, np.integer)) or
                            top_k < 1):
    raise ValueError(f'top_k must be a positive int or None, got {top_k!r}.')
  order = np.argsort(-scores, axis=1, kind='stable')
  if top_k is not None:
    order = order[:, :top_k]
  keep = np.take_along_axis(scores, order, axis=1) >= threshold
  return [row[k] for row, k in zip(order, keep)]


def _divide(num, den, zero_division: float):
  num = np.asarray(num, np.float64)
  den = np.asarray(den, np.float64)
  return np.where(den > 0, num / np.where(den > 0, den, 1.0), zero_division)


def counts(Y_true, Y_pred) -> dict:
  """int64 [C] tp, fp, fn and support (true documents) of every label."""
  Y_true, Y_pred = _pair(Y_true, Y_pred)
  tp = np.sum(Y_true & Y_pred, axis=0)
  fp = np.sum(~Y_true & Y_pred, axis=0)
  fn = np.sum(Y_true & ~Y_pred, axis=0)
  return dict(tp=tp, fp=fp, fn=fn, support=tp + fn)


def per_label(Y_true, Y_pred, zero_division: float = 0.0) -> dict:
  """float64 [C] precision, recall, f1 and int64 [C] support per label."""
  c = counts(Y_true, Y_pred)
  tp, fp, fn = c['tp'], c['fp'], c['fn']
  return dict(precision=_divide(tp, tp + fp, zero_division),
              recall=_divide(tp, tp + fn, zero_division),
              f1=_divide(2 * tp, 2 * tp + fp + fn, zero_division),
              support=c['support'])


def micro_f1(Y_true, Y_pred, zero_division: float = 0.0) -> float:
  """F1 of the tp, fp, fn counts pooled over all labels."""
  c = counts(Y_true, Y_pred)
  tp, fp, fn = (int(c[k].sum()) for k in ('tp', 'fp', 'fn'))
  return float(_divide(2 * tp, 2 * tp + fp + fn, zero_division))


def macro_f1(Y_true, Y_pred, zero_division: float = 0.0) -> float:
  """Mean over the C labels of each label's F1."""
  f1 = per_label(Y_true, Y_pred, zero_division)['f1']
  return float(f1.mean()) if f1.size else float(zero_division)


def precision_recall_at_k(scores, Y_true, k: int = 1,
                          threshold: float = 0.0) -> tuple[float, float]:
  """(P@k, R@k) as fastText's ``test`` computes them (module docstring).

  Ties in score go to the lower label id.

  Args:
    scores: [N, C] label probabilities (or scores; then ``threshold`` must
      be on their scale).
    Y_true: multi-hot [N, C].
    k: labels predicted per document (>= 1; more than C means all).
    threshold: a prediction needs a score ``>= threshold``.

  Returns:
    (precision, recall); NaN for a quantity with nothing to divide by.
  """
  scores = np.asarray(scores)
  Y_true = _multi_hot(Y_true, 'Y_true')
  if scores.shape != Y_true.shape:
    raise ValueError(f'scores {scores.shape} and Y_true {Y_true.shape} differ '
                     f'in shape.')
  if int(k) < 1:
    raise ValueError(f'k must be >= 1, got {k}.')
  labelled = Y_true.any(axis=1)
  scores, Y_true = scores[labelled], Y_true[labelled]
  k = min(int(k), scores.shape[1])
  top = np.argsort(-scores, axis=1, kind='stable')[:, :k]         # [n, k]
  rows = np.arange(scores.shape[0])[:, None]
  kept = scores[rows, top] >= threshold
  correct = int(np.sum(Y_true[rows, top] & kept))
  predicted, gold = int(kept.sum()), int(Y_true.sum())
  return (correct / predicted if predicted else float('nan'),
          correct / gold if gold else float('nan'))


def tune_threshold(scores, Y_true, metric: str = 'micro_f1', grid=None,
                   zero_division: float = 0.0) -> tuple[float, list]:
  """The threshold of the best ``metric`` on a validation split.

  Args:
    scores: [N, C] validation probabilities.
    Y_true: multi-hot [N, C].
    metric: micro_f1 | macro_f1.
    grid: thresholds to try (default 0.05, 0.06, .., 0.95).
    zero_division: as for `macro_f1`.

  Returns:
    (best threshold, [(threshold, value), ...] over the grid). Ties go to
    the threshold nearest 0.5.
  """
  fns = dict(micro_f1=micro_f1, macro_f1=macro_f1)
  if metric not in fns:
    raise ValueError(f'metric must be one of {sorted(fns)}, got {metric!r}.')
  grid = (np.round(np.arange(0.05, 0.951, 0.01), 2) if grid is None
          else np.asarray(grid, np.float64))
  if grid.size == 0:
    raise ValueError('tune_threshold: the grid is empty.')
  table = [(float(t), fns[metric](Y_true, predict_sets(scores, t),
                                  zero_division)) for t in grid]
  best = max(table, key=lambda row: (row[1], -abs(row[0] - 0.5)))
  return best[0], table


def multilabel_report(Y_true, scores, threshold: float = DEFAULT_THRESHOLD,
                      ks=(1, 5), label_names=None,
                      zero_division: float = 0.0) -> dict:
  """Every metric of this module on one split, as a JSON-able dict.

  Returns:
    dict with num_documents, num_labels, labels_per_document (true and
    predicted), threshold, micro_precision/recall/f1, macro_precision/
    recall/f1, p_at_k/r_at_k for each k (keys ``p_at_1``, ...), and
    per_label: a list of {label, precision, recall, f1, support, predicted}.
  """
  Y_true = _multi_hot(Y_true, 'Y_true')
  Y_pred = predict_sets(scores, threshold)
  c = counts(Y_true, Y_pred)
  rows = per_label(Y_true, Y_pred, zero_division)
  tp, fp, fn = (int(c[k].sum()) for k in ('tp', 'fp', 'fn'))
  names = (list(label_names) if label_names is not None
           else [str(i) for i in range(Y_true.shape[1])])
  report = dict(
      num_documents=int(Y_true.shape[0]), num_labels=int(Y_true.shape[1]),
      labels_per_document=float(Y_true.sum(1).mean()) if Y_true.size else 0.,
      predicted_per_document=(float(Y_pred.sum(1).mean()) if Y_pred.size
                              else 0.),
      threshold=float(threshold),
      micro_precision=float(_divide(tp, tp + fp, zero_division)),
      micro_recall=float(_divide(tp, tp + fn, zero_division)),
      micro_f1=micro_f1(Y_true, Y_pred, zero_division),
      macro_precision=float(rows['precision'].mean()),
      macro_recall=float(rows['recall'].mean()),
      macro_f1=float(rows['f1'].mean()))
  for k in ks:
    p, r = precision_recall_at_k(scores, Y_true, k)
    report[f'p_at_{k}'], report[f'r_at_{k}'] = p, r
  report['per_label'] = [
      dict(label=names[j], precision=float(rows['precision'][j]),
           recall=float(rows['recall'][j]), f1=float(rows['f1'][j]),
           support=int(rows['support'][j]),
           predicted=int(c['tp'][j] + c['fp'][j]))
      for j in range(Y_true.shape[1])]
  return report


def format_multilabel_report(report: dict, max_labels: int = 20) -> str:
  """A text table of `multilabel_report`: totals, then the labels by support."""
  ks = sorted(int(key[5:]) for key in report if key.startswith('p_at_'))
  lines = [
      f'{report["num_documents"]} documents, {report["num_labels"]} labels, '
      f'{report["labels_per_document"]:.2f} true and '
      f'{report["predicted_per_document"]:.2f} predicted per document '
      f'(threshold {report["threshold"]:g})',
      f'micro  precision {report["micro_precision"]:.4f}  recall '
      f'{report["micro_recall"]:.4f}  F1 {report["micro_f1"]:.4f}',
      f'macro  precision {report["macro_precision"]:.4f}  recall '
      f'{report["macro_recall"]:.4f}  F1 {report["macro_f1"]:.4f}',
      '  '.join(f'P@{k} {report[f"p_at_{k}"]:.4f}  R@{k} '
                f'{report[f"r_at_{k}"]:.4f}' for k in ks)]
  rows = sorted(report['per_label'], key=lambda r: (-r['support'], r['label']))
  width = max([len(r['label']) for r in rows[:max_labels]] + [5])
  lines.append(f'{"label":<{width}}  precision  recall      f1  support  '
               'predicted')
  for r in rows[:max_labels]:
    lines.append(f'{r["label"]:<{width}}  {r["precision"]:9.4f}  '
                 f'{r["recall"]:6.4f}  {r["f1"]:6.4f}  {r["support"]:7d}  '
                 f'{r["predicted"]:9d}')
  if len(rows) > max_labels:
    lines.append(f'... {len(rows) - max_labels} more labels')
  return '\n'.join(lines)
