"""Classification metrics on the host (numpy only).

Shapes: N examples, C classes. Labels are int class ids in [0, C); every
function takes ``num_classes`` so that a class absent from both ``y_true`` and
``y_pred`` still gets its row, exactly like scikit-learn with
``labels=range(C)``.

Macro averages run over the classes PRESENT in ``y_true`` (support > 0), as
scikit-learn's ``labels=sorted(set(y_true))`` does: a class with no test
document has no recall to measure, and counting its F1 of 0 would lower the
score for a gap in the test split, not for a mistake of the model (a stray
one-document class, issue 13). Predictions of such a class still count, as
false negatives of the true class. `classification_report` lists the absent
classes by name. (scikit-learn's default, the union of ``y_true`` and
``y_pred``, would also average in the absent classes that were predicted.)

Zero division: precision of a class that is never predicted, recall of a class
that never occurs, and F1 when both are 0 are reported as ``zero_division``
(0.0 by default), matching ``sklearn.metrics`` with ``zero_division=0``.
"""

from __future__ import annotations

import numpy as np


def _labels(y, name: str, num_classes: int) -> np.ndarray:
  y = np.asarray(y)
  if y.ndim != 1:
    raise ValueError(f'{name}: expected int labels [N], got shape {y.shape}.')
  if y.size and not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f'{name}: labels must be int class ids, got {y.dtype}.')
  if y.size and (y.min() < 0 or y.max() >= num_classes):
    raise ValueError(f'{name}: labels must lie in [0, {num_classes}); found '
                     f'{y.min()}..{y.max()}.')
  return y.astype(np.int64)


def _pair(y_true, y_pred, num_classes):
  y_true = _labels(y_true, 'y_true', num_classes)
  y_pred = _labels(y_pred, 'y_pred', num_classes)
  if y_true.shape != y_pred.shape:
    raise ValueError(f'y_true {y_true.shape} and y_pred {y_pred.shape} differ '
                     f'in length.')
  return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
  """Fraction of exact matches (0.0 for no examples).

  Args:
    y_true: int [N].
    y_pred: int [N].

  Returns:
    float in [0, 1].
  """
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  if y_true.shape != y_pred.shape:
    raise ValueError(f'y_true {y_true.shape} and y_pred {y_pred.shape} differ.')
  return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
  """Counts ``cm[i, j]`` of examples of true class i predicted as class j.

  Args:
    y_true: int [N] in [0, C).
    y_pred: int [N] in [0, C).
    num_classes: C.

  Returns:
    int64 [C, C]; rows are true classes, columns predictions (as sklearn).
  """
  y_true, y_pred = _pair(y_true, y_pred, num_classes)
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (y_true, y_pred), 1)
  return cm


def _safe_divide(num, den, zero_division):
  num = np.asarray(num, np.float64)
  den = np.asarray(den, np.float64)
  out = np.full(num.shape, float(zero_division))
  np.divide(num, den, out=out, where=den > 0)
  return out


def precision_recall_f1(y_true, y_pred, num_classes: int,
                        zero_division: float = 0.0) -> dict:
  """Per-class precision, recall, F1 and support.

  Args:
    y_true: int [N] in [0, C).
    y_pred: int [N] in [0, C).
    num_classes: C.
    zero_division: value reported where a denominator is 0 (see module doc).

  Returns:
    dict with float64 [C] arrays ``precision``, ``recall``, ``f1`` and int64
    [C] ``support`` (number of true examples of each class).
  """
  cm = confusion_matrix(y_true, y_pred, num_classes)
  tp = np.diag(cm)
  predicted = cm.sum(axis=0)
  support = cm.sum(axis=1)
  precision = _safe_divide(tp, predicted, zero_division)
  recall = _safe_divide(tp, support, zero_division)
  # F1 = 2 tp / (2 tp + fp + fn): the harmonic mean, without dividing by a 0
  # precision or recall first.
  f1 = _safe_divide(2 * tp, predicted + support, zero_division)
  return dict(precision=precision, recall=recall, f1=f1, support=support)


def present_classes(y_true, num_classes: int) -> np.ndarray:
  """int64 [K]: the sorted class ids with at least one example in y_true."""
  y_true = _labels(y_true, 'y_true', num_classes)
  return np.flatnonzero(np.bincount(y_true, minlength=num_classes))


def _macro(values: np.ndarray, present: np.ndarray) -> float:
  return float(np.mean(values[present])) if present.size else 0.0


def macro_f1(y_true, y_pred, num_classes: int,
             zero_division: float = 0.0) -> float:
  """Unweighted mean of the per-class F1 over the classes present in y_true.

  Equals ``sklearn.metrics.f1_score(y_true, y_pred, average='macro',
  labels=sorted(set(y_true)), zero_division=...)``; 0.0 without examples.
  """
  f1 = precision_recall_f1(y_true, y_pred, num_classes, zero_division)['f1']
  return _macro(f1, present_classes(y_true, num_classes))


def _probs(proba, num_examples: int) -> np.ndarray:
  proba = np.asarray(proba, np.float64)
  if proba.ndim != 2 or proba.shape[0] != num_examples:
    raise ValueError(f'proba: expected [{num_examples}, C], got '
                     f'{proba.shape}.')
  return proba


def log_loss(y_true, proba, eps: float | None = None) -> float:
  """Mean negative log-probability of the true class.

  Rows are renormalised and probabilities clipped to [eps, 1 - eps] (eps:
  float64 machine epsilon by default), as ``sklearn.metrics.log_loss``.

  Args:
    y_true: int [N] in [0, C).
    proba: float [N, C] class probabilities.
    eps: clipping constant.

  Returns:
    float.
  """
  y = np.asarray(y_true)
  proba = _probs(proba, y.shape[0])
  y = _labels(y, 'y_true', proba.shape[1])
  eps = np.finfo(np.float64).eps if eps is None else eps
  proba = proba / proba.sum(axis=1, keepdims=True)
  p = np.clip(proba[np.arange(y.shape[0]), y], eps, 1 - eps)
  return float(-np.mean(np.log(p))) if y.size else 0.0


def expected_calibration_error(y_true, proba, num_bins: int = 15) -> float:
  """ECE of the top-class confidence, with equal-width bins on [0, 1].

  ``sum_b |B_b| / N * |accuracy(B_b) - mean confidence(B_b)|`` where bin b
  holds the examples whose confidence ``max_c proba[n, c]`` lies in
  ``(b / num_bins, (b + 1) / num_bins]`` (the first bin also holds 0).

  Args:
    y_true: int [N] in [0, C).
    proba: float [N, C] class probabilities.
    num_bins: number of bins.

  Returns:
    float in [0, 1].
  """
  y = np.asarray(y_true)
  proba = _probs(proba, y.shape[0])
  y = _labels(y, 'y_true', proba.shape[1])
  if not y.size:
    return 0.0
  confidence = proba.max(axis=1)
  correct = (proba.argmax(axis=1) == y).astype(np.float64)
  bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0,
                 num_bins - 1)
  acc_sum = np.bincount(bins, weights=correct, minlength=num_bins)
  conf_sum = np.bincount(bins, weights=confidence, minlength=num_bins)
  return float(np.sum(np.abs(acc_sum - conf_sum)) / y.shape[0])


def classification_report(y_true, proba, label_names=None,
                          zero_division: float = 0.0,
                          probabilities: bool = True) -> dict:
  """Everything at once, JSON-ready: the runners' evaluation summary.

  Args:
    y_true: int [N] in [0, C).
    proba: float [N, C] predicted probabilities (predictions are the argmax).
    label_names: C names (default: '0'..'C-1').
    zero_division: see module docstring.
    probabilities: False when ``proba`` are scores of a margin loss (hinge):
      log_loss and ece are then None.

  Returns:
    dict with accuracy, macro_precision, macro_recall, macro_f1 (over the
    classes present in y_true, see module docstring), absent_classes (names
    of the classes without examples in y_true), log_loss, ece,
    num_examples, confusion_matrix (list of lists) and per_class (list of
    dicts: label, precision, recall, f1, support; absent classes included).
  """
  proba = np.asarray(proba, np.float64)
  num_classes = proba.shape[-1]
  names = ([str(i) for i in range(num_classes)] if label_names is None
           else [str(n) for n in label_names])
  if len(names) != num_classes:
    raise ValueError(f'{len(names)} label names for {num_classes} classes.')
  y_pred = proba.argmax(axis=1)
  prf = precision_recall_f1(y_true, y_pred, num_classes, zero_division)
  present = present_classes(y_true, num_classes)
  return dict(
      num_examples=int(np.asarray(y_true).shape[0]),
      accuracy=accuracy(y_true, y_pred),
      macro_precision=_macro(prf['precision'], present),
      macro_recall=_macro(prf['recall'], present),
      macro_f1=_macro(prf['f1'], present),
      absent_classes=[names[c] for c in range(num_classes)
                      if prf['support'][c] == 0],
      log_loss=log_loss(y_true, proba) if probabilities else None,
      ece=(expected_calibration_error(y_true, proba) if probabilities
           else None),
      confusion_matrix=confusion_matrix(y_true, y_pred, num_classes).tolist(),
      per_class=[dict(label=names[c], precision=float(prf['precision'][c]),
                      recall=float(prf['recall'][c]), f1=float(prf['f1'][c]),
                      support=int(prf['support'][c]))
                 for c in range(num_classes)])


def format_report(report: dict) -> str:
  """A fixed-width text table of a `classification_report` dict."""
  width = max([5] + [len(r['label']) for r in report['per_class']])
  lines = [f'{"label":>{width}s} {"precision":>9s} {"recall":>9s} '
           f'{"f1":>9s} {"support":>8s}']
  for r in report['per_class']:
    lines.append(f'{r["label"]:>{width}s} {r["precision"]:9.4f} '
                 f'{r["recall"]:9.4f} {r["f1"]:9.4f} {r["support"]:8d}')
  lines.append(f'{"macro":>{width}s} {report["macro_precision"]:9.4f} '
               f'{report["macro_recall"]:9.4f} {report["macro_f1"]:9.4f} '
               f'{report["num_examples"]:8d}')
  lines.append(f'accuracy {report["accuracy"]:.4f}  log loss '
               f'{report["log_loss"]:.4f}  ECE {report["ece"]:.4f}')
  absent = report.get('absent_classes')
  if absent:
    lines.append(f'{len(absent)} class(es) without test examples, left out '
                 f'of the macro averages: {", ".join(absent[:10])}'
                 + (', ...' if len(absent) > 10 else ''))
  return '\n'.join(lines)
