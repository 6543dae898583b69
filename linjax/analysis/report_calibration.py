"""Calibration for the report: the reliability diagram, ECE, threshold curve.

Host numpy, pure functions. Shapes: K predictions, N documents, C labels,
B bins, G thresholds.

`reliability` bins predicted probabilities against how often they were
right (single-label: the top class's confidence against accuracy;
multi-label: every (document, label) probability against the label's
presence) and gives the expected calibration error; `threshold_curve` is a
multi-label model's micro- and macro-F1 at each decision threshold.
"""

from __future__ import annotations

import numpy as np



def reliability(confidence, outcome, num_bins: int = 15) -> dict:
  """The reliability diagram and the expected calibration error.

  Bins are equal-width on [0, 1]: bin b holds the predictions whose
  confidence lies in ``(b / num_bins, (b + 1) / num_bins]`` (the first also
  0), as `metrics.expected_calibration_error`.

  Args:
    confidence: float [K] predicted probabilities.
    outcome: [K] 1 where the prediction was right (the label present), 0
      where not.
    num_bins: B.

  Returns:
    dict with ``lower``, ``upper`` (float [B] bin edges), ``count`` (int
    [B]), ``accuracy`` and ``confidence`` (float [B] means of outcome and
    confidence; None for an empty bin), and ``ece``:
    ``sum_b count_b / K * |accuracy_b - confidence_b|``.
  """
  confidence = np.asarray(confidence, np.float64).ravel()
  outcome = np.asarray(outcome, np.float64).ravel()
  bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0,
                 num_bins - 1)
  count = np.bincount(bins, minlength=num_bins)
  hits = np.bincount(bins, weights=outcome, minlength=num_bins)
  conf = np.bincount(bins, weights=confidence, minlength=num_bins)
  total = max(confidence.shape[0], 1)

  def mean(sums):
    return [float(v / n) if n else None for v, n in zip(sums, count)]

  return dict(lower=(np.arange(num_bins) / num_bins).tolist(),
              upper=(np.arange(1, num_bins + 1) / num_bins).tolist(),
              count=count.tolist(), accuracy=mean(hits),
              confidence=mean(conf),
              ece=float(np.abs(hits - conf).sum() / total))


def threshold_curve(Y, proba, thresholds=None) -> dict:
  """Micro- and macro-F1 of a multi-label prediction at each threshold.

  Args:
    Y: multi-hot [N, C].
    proba: float [N, C] label probabilities.
    thresholds: float [G] (default 0.02, 0.04, .., 0.98).

  Returns:
    dict with ``thresholds``, ``micro_f1`` and ``macro_f1`` (float [G]),
    as `multilabel_metrics.micro_f1`/`macro_f1` (zero_division 0).
  """
  thresholds = (np.round(np.arange(0.02, 0.99, 0.02), 2) if thresholds is None
                else np.asarray(thresholds, np.float64))
  Y = np.asarray(Y) > 0
  proba = np.asarray(proba, np.float64)
  # Per label: its probabilities sorted, to count the predictions at or
  # above each threshold without a [G, N, C] array.
  true_sorted = np.sort(np.where(Y, proba, -np.inf), axis=0)
  all_sorted = np.sort(proba, axis=0)
  num = proba.shape[0]

  def above(column_sorted):   # [G, C] values >= each threshold
    return num - np.stack([np.searchsorted(column_sorted[:, c], thresholds)
                           for c in range(column_sorted.shape[1])], axis=1)

  tp = above(true_sorted).astype(np.float64)            # [G, C]
  predicted = above(all_sorted).astype(np.float64)
  support = Y.sum(axis=0).astype(np.float64)[None, :]
  den = predicted + support                             # 2tp + fp + fn
  f1 = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
  tp_all, den_all = tp.sum(1), den.sum(1)
  micro = np.where(den_all > 0, 2 * tp_all / np.where(den_all > 0, den_all, 1),
                   0.0)
  return dict(thresholds=thresholds.tolist(), micro_f1=micro.tolist(),
              macro_f1=f1.mean(axis=1).tolist())
