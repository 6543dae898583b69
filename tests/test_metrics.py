"""Metrics against scikit-learn on random data and hand-worked numbers."""

import numpy as np
import pytest
from sklearn import metrics as skm

from linjax.analysis import metrics


def _random_case(seed, n=200, c=5, absent=()):
  rng = np.random.default_rng(seed)
  y_true = rng.integers(0, c, n)
  y_pred = rng.integers(0, c, n)
  for k in absent:  # class k never predicted
    y_pred[y_pred == k] = (k + 1) % c
  logits = rng.normal(size=(n, c))
  proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  return y_true, y_pred, proba


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_against_sklearn(seed):
  c = 5
  y_true, y_pred, proba = _random_case(seed, c=c)
  labels = list(range(c))
  assert metrics.accuracy(y_true, y_pred) == pytest.approx(
      skm.accuracy_score(y_true, y_pred))
  np.testing.assert_array_equal(
      metrics.confusion_matrix(y_true, y_pred, c),
      skm.confusion_matrix(y_true, y_pred, labels=labels))
  p, r, f, s = skm.precision_recall_fscore_support(
      y_true, y_pred, labels=labels, zero_division=0)
  got = metrics.precision_recall_f1(y_true, y_pred, c)
  np.testing.assert_allclose(got['precision'], p)
  np.testing.assert_allclose(got['recall'], r)
  np.testing.assert_allclose(got['f1'], f)
  np.testing.assert_array_equal(got['support'], s)
  assert metrics.macro_f1(y_true, y_pred, c) == pytest.approx(
      skm.f1_score(y_true, y_pred, labels=labels, average='macro',
                   zero_division=0))
  assert metrics.log_loss(y_true, proba) == pytest.approx(
      skm.log_loss(y_true, proba, labels=labels), rel=1e-9)


def test_absent_classes_zero_division():
  # Class 2 is never predicted; class 4 (of C=6) never occurs and is never
  # predicted; class 5 is predicted but never occurs.
  c = 6
  y_true, y_pred, _ = _random_case(3, n=150, c=4, absent=(2,))
  y_pred[:5] = 5
  labels = list(range(c))
  for zd in (0, 1):
    got = metrics.precision_recall_f1(y_true, y_pred, c, zero_division=zd)
    p, r, f, s = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=zd)
    np.testing.assert_allclose(got['precision'], p)
    np.testing.assert_allclose(got['recall'], r)
    np.testing.assert_allclose(got['f1'], f)
    np.testing.assert_array_equal(got['support'], s)
  got = metrics.precision_recall_f1(y_true, y_pred, c)
  assert got['precision'][2] == 0.0 and got['recall'][4] == 0.0
  assert got['f1'][4] == 0.0 and got['precision'][5] == 0.0
  assert metrics.macro_f1(y_true, y_pred, c) == pytest.approx(
      skm.f1_score(y_true, y_pred, labels=labels, average='macro',
                   zero_division=0))


def test_expected_calibration_error_by_hand():
  # Four bins of width 0.25:
  # bin (0.5, 0.75]: conf 0.6, 0.7, both correct -> |1 - 0.65| = 0.35, 2/5
  # bin (0.75, 1.0]: conf 0.9, 0.8, 1.0, one correct -> |1/3 - 0.9|, 3/5
  proba = np.array([[0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.2, 0.8],
                    [1.0, 0.0]])
  y = np.array([0, 1, 1, 0, 0])
  want = 2 / 5 * 0.35 + 3 / 5 * abs(1 / 3 - 0.9)
  assert metrics.expected_calibration_error(y, proba, num_bins=4) == (
      pytest.approx(want))
  # A perfectly calibrated one-hot predictor has ECE 0.
  assert metrics.expected_calibration_error(
      np.array([0, 1]), np.eye(2)) == 0.0


def test_report_and_validation():
  y_true, _, proba = _random_case(4, c=3)
  report = metrics.classification_report(y_true, proba, ['a', 'b', 'c'])
  y_pred = proba.argmax(1)
  assert report['accuracy'] == pytest.approx(
      skm.accuracy_score(y_true, y_pred))
  assert report['macro_f1'] == pytest.approx(
      skm.f1_score(y_true, y_pred, average='macro'))
  assert [r['label'] for r in report['per_class']] == ['a', 'b', 'c']
  assert 'macro' in metrics.format_report(report)
  with pytest.raises(ValueError, match='lie in'):
    metrics.confusion_matrix([0, 3], [0, 1], 3)
  with pytest.raises(ValueError, match='differ'):
    metrics.accuracy([0, 1], [0])
