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
  # Macro-F1 over the classes present in y_true (0..3), not all six.
  np.testing.assert_array_equal(metrics.present_classes(y_true, c),
                                [0, 1, 2, 3])
  for zd in (0, 1):
    assert metrics.macro_f1(y_true, y_pred, c, zero_division=zd) == (
        pytest.approx(skm.f1_score(y_true, y_pred, labels=[0, 1, 2, 3],
                                   average='macro', zero_division=zd)))


def test_report_leaves_absent_classes_out_of_macro_averages():
  """Issue 13, item 4: a stray class with no test examples (here 'stray',
  id 2, which the model nevertheless predicts for some documents) was
  counted in macro-F1 with F1 = 0."""
  rng = np.random.default_rng(7)
  names = ['art', 'sport', 'stray', 'tech']
  y_true = rng.choice([0, 1, 3], 120)
  proba = rng.dirichlet(np.ones(4), 120)
  y_pred = proba.argmax(1)
  assert (y_pred == 2).any() and not (y_true == 2).any()
  report = metrics.classification_report(y_true, proba, names)
  assert report['absent_classes'] == ['stray']
  present = [0, 1, 3]
  for key, fn in (('macro_f1', skm.f1_score),
                  ('macro_precision', skm.precision_score),
                  ('macro_recall', skm.recall_score)):
    assert report[key] == pytest.approx(fn(y_true, y_pred, labels=present,
                                           average='macro', zero_division=0))
  # It differs from averaging over all four: the test above would catch the
  # old behaviour.
  assert report['macro_f1'] != pytest.approx(skm.f1_score(
      y_true, y_pred, labels=[0, 1, 2, 3], average='macro', zero_division=0))
  assert [r['support'] for r in report['per_class']][2] == 0
  text = metrics.format_report(report)
  assert ('1 class(es) without test examples, left out of the macro '
          'averages: stray') in text
  # Every class present: nothing absent, nothing in the table about it.
  full = metrics.classification_report(np.arange(8) % 4, proba[:8], names)
  assert full['absent_classes'] == []
  assert 'without test examples' not in metrics.format_report(full)
  assert metrics.macro_f1(np.zeros(0, int), np.zeros(0, int), 3) == 0.0


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
