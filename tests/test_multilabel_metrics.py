"""Multi-label metrics against scikit-learn, fastText's test and by hand."""

from pathlib import Path

import numpy as np
import pytest

from linjax.analysis import multilabel_metrics as mm

sklearn_metrics = pytest.importorskip('sklearn.metrics')


def _case(seed=0, n=60, num_labels=7):
  """Random multi-hot truth and probabilities correlated with it; label 5
  never occurs, label 6 is never predicted at 0.5."""
  rng = np.random.default_rng(seed)
  Y = (rng.uniform(size=(n, num_labels)) < 0.3).astype(np.uint8)
  Y[:, 5] = 0
  scores = np.clip(0.45 * Y + rng.uniform(0, 0.6, size=Y.shape), 0, 1)
  scores[:, 6] = np.minimum(scores[:, 6], 0.49)
  return Y, scores


@pytest.mark.parametrize('zero_division', [0.0, 1.0])
@pytest.mark.parametrize('threshold', [0.3, 0.5, 0.7])
def test_f1_equals_scikit_learn(threshold, zero_division):
  Y, scores = _case()
  pred = mm.predict_sets(scores, threshold)
  for average, ours in (('micro', mm.micro_f1), ('macro', mm.macro_f1)):
    want = sklearn_metrics.f1_score(Y, pred.astype(int), average=average,
                                    zero_division=zero_division)
    assert ours(Y, pred, zero_division) == pytest.approx(want, abs=1e-12)
  p, r, f, s = sklearn_metrics.precision_recall_fscore_support(
      Y, pred.astype(int), average=None, zero_division=zero_division)
  rows = mm.per_label(Y, pred, zero_division)
  np.testing.assert_allclose(rows['precision'], p, atol=1e-12)
  np.testing.assert_allclose(rows['recall'], r, atol=1e-12)
  np.testing.assert_allclose(rows['f1'], f, atol=1e-12)
  np.testing.assert_array_equal(rows['support'], s)


def test_report_matches_its_parts_and_scikit_learn():
  Y, scores = _case(seed=1)
  report = mm.multilabel_report(Y, scores, threshold=0.5, ks=(1, 3),
                                label_names=list('abcdefg'))
  pred = (scores >= 0.5).astype(int)
  for average in ('micro', 'macro'):
    p, r, f, _ = sklearn_metrics.precision_recall_fscore_support(
        Y, pred, average=average, zero_division=0)
    assert report[f'{average}_precision'] == pytest.approx(p, abs=1e-12)
    assert report[f'{average}_recall'] == pytest.approx(r, abs=1e-12)
    assert report[f'{average}_f1'] == pytest.approx(f, abs=1e-12)
  assert report['p_at_3'] == mm.precision_recall_at_k(scores, Y, 3)[0]
  assert [row['label'] for row in report['per_label']] == list('abcdefg')
  assert report['per_label'][6]['predicted'] == 0
  text = mm.format_multilabel_report(report, max_labels=3)
  assert 'micro' in text and 'P@3' in text and '4 more labels' in text


def test_precision_and_recall_at_k_by_hand():
  """Three documents, four labels.

  doc 0: true {0, 2}, ranking 2 (.9) > 1 (.5) > 0 (.3) > 3 (.1).
  doc 1: true {3},    ranking 3 (.8) > 0 (.3) > 1 (.2) > 2 (.1).
  doc 2: no true label: skipped (fastText's test skips it).
  k = 1: {2}, {3}: 2 hits of 2 predictions, of 3 true labels.
  k = 2: {2, 1}, {3, 0}: 2 hits of 4; k = 3: {2, 1, 0}, {3, 0, 1}: 3 of 6.
  k = 2 with threshold 0.35: {2, 1}, {3}: 2 hits of 3 predictions.
  """
  scores = np.array([[0.3, 0.5, 0.9, 0.1],
                     [0.3, 0.2, 0.1, 0.8],
                     [0.9, 0.9, 0.9, 0.9]])
  Y = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
  assert mm.precision_recall_at_k(scores, Y, 1) == (1.0, 2 / 3)
  assert mm.precision_recall_at_k(scores, Y, 2) == (0.5, 2 / 3)
  assert mm.precision_recall_at_k(scores, Y, 3) == (0.5, 1.0)
  assert mm.precision_recall_at_k(scores, Y, 2, threshold=0.35) == (
      2 / 3, 2 / 3)
  # k beyond C predicts every label: recall 1.
  assert mm.precision_recall_at_k(scores, Y, 9) == (3 / 8, 1.0)
  with pytest.raises(ValueError, match='k must be'):
    mm.precision_recall_at_k(scores, Y, 0)


def test_precision_at_k_equals_fasttext_test(tmp_path):
  """fastText's own `test` numbers, from the probabilities its `predict`
  gives for the same documents.

  fastText reads its sigmoid from a 512-entry table, so two labels of a
  document often tie, and its heap breaks such ties one way for k = 1 and
  another for k = -1. The comparison is exact on the documents whose label
  probabilities are all distinct (the file `test` reads holds only those).
  """
  fasttext = pytest.importorskip('fasttext')
  rng = np.random.default_rng(0)
  words = [f'w{i}' for i in range(40)]
  lines = []
  for _ in range(400):
    tags = sorted(set(rng.choice(6, rng.integers(1, 4)).tolist()))
    text = [f'marker{t}' for t in tags if rng.uniform() < 0.7]
    text += rng.choice(words, 6).tolist()
    lines.append(' '.join(f'__label__t{t}' for t in tags) + ' ' +
                 ' '.join(rng.permutation(text)))
  train = Path(tmp_path) / 'train.txt'
  train.write_text('\n'.join(lines) + '\n')
  # The settings of benchmarks/peers_multilabel.py (some smaller dims
  # stop this fastText build with "Encountered NaN" on small files).
  model = fasttext.train_supervised(input=str(train), epoch=5, lr=0.5,
                                    wordNgrams=2, bucket=2_000_000, dim=10,
                                    loss='ova', thread=2, seed=0, verbose=0)
  labels = sorted(model.labels)
  index = {name: j for j, name in enumerate(labels)}
  kept, scores, Y = [], [], []
  for line in lines:
    tokens = line.split()
    text = ' '.join(t for t in tokens if not t.startswith('__label__'))
    names, probs = model.predict(text, k=-1, threshold=0.0)
    if len(set(probs.tolist())) < len(probs):
      continue                      # a tie: fastText's order is arbitrary
    row = np.zeros(len(labels))
    row[[index[name] for name in names]] = probs
    kept.append(line)
    scores.append(row)
    Y.append([int(name in tokens) for name in labels])
  assert len(kept) > 200
  test = Path(tmp_path) / 'test.txt'
  test.write_text('\n'.join(kept) + '\n')
  for k in (1, 2, 5):
    n, p_ft, r_ft = model.test(str(test), k=k)
    assert n == len(kept)
    p, r = mm.precision_recall_at_k(np.array(scores), np.array(Y), k)
    assert p == pytest.approx(p_ft, abs=1e-9)
    assert r == pytest.approx(r_ft, abs=1e-9)


def test_tune_threshold_finds_the_best_micro_f1():
  Y, scores = _case(seed=2)
  best, table = mm.tune_threshold(scores, Y)
  values = dict(table)
  assert values[best] == max(values.values())
  assert values[best] >= values[0.5]
  assert best == pytest.approx(max(table, key=lambda r: r[1])[0])
  # On a grid of one, that threshold; an unknown metric is refused.
  assert mm.tune_threshold(scores, Y, grid=[0.3])[0] == 0.3
  macro, _ = mm.tune_threshold(scores, Y, metric='macro_f1')
  assert 0.05 <= macro <= 0.95
  with pytest.raises(ValueError, match='metric'):
    mm.tune_threshold(scores, Y, metric='accuracy')


def test_shape_errors():
  with pytest.raises(ValueError, match='multi-hot'):
    mm.micro_f1(np.zeros(3), np.zeros(3))
  with pytest.raises(ValueError, match='differ'):
    mm.micro_f1(np.zeros((3, 2)), np.zeros((3, 3)))
  with pytest.raises(ValueError, match='differ'):
    mm.precision_recall_at_k(np.zeros((3, 2)), np.zeros((2, 2)))


# -- scores exactly at the threshold, and ties -------------------------------
#
# A label is predicted when its score is >= the threshold: a score ON the
# threshold counts. The scores below are values of tune_threshold's grid
# (np.round(np.arange(0.05, 0.951, 0.01), 2)), so many sit exactly on one.

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def _on_the_grid(seed=3, n=40, num_labels=5):
  rng = np.random.default_rng(seed)
  Y = (rng.uniform(size=(n, num_labels)) < 0.4).astype(np.uint8)
  scores = rng.choice(GRID, size=Y.shape)
  return Y, scores


def test_predict_sets_is_scores_at_or_above_the_threshold():
  Y, scores = _on_the_grid()
  for t in list(GRID) + [0.0, 1.0]:
    np.testing.assert_array_equal(mm.predict_sets(scores, t), scores >= t)
  # By hand: 0.5 on a threshold of 0.5 is in, 0.49 is out.
  np.testing.assert_array_equal(
      mm.predict_sets(np.array([[0.5, 0.49, 0.51]]), 0.5), [[True, False,
                                                           True]])
  assert mm.micro_f1(Y, mm.predict_sets(scores, 0.5)) == pytest.approx(
      sklearn_metrics.f1_score(Y, (scores >= 0.5).astype(int),
                               average='micro'))


def test_ranked_labels_keep_a_score_on_the_threshold():
  scores = np.array([[0.2, 0.7, 0.5, 0.5], [0.1, 0.1, 0.1, 0.1]])
  ranked = mm.ranked_labels(scores, 0.5)
  # Ties keep label-id order; 0.5 on 0.5 is kept.
  assert [list(r) for r in ranked] == [[1, 2, 3], []]
  assert [list(r) for r in mm.ranked_labels(scores, 0.1)][1] == [0, 1, 2, 3]
  assert [list(r) for r in mm.ranked_labels(scores, 0.7, top_k=1)] == [[1],
                                                                     []]
  Y, scores = _on_the_grid(seed=4)
  for t in (0.05, 0.33, 0.5, 0.95):
    for row, kept in zip(scores, mm.ranked_labels(scores, t)):
      assert set(kept) == set(np.flatnonzero(row >= t))


def test_precision_at_k_counts_a_prediction_on_the_threshold():
  scores = np.array([[0.3, 0.6], [0.3, 0.2]])
  Y = np.array([[1, 0], [1, 0]])
  # k=1 predicts label 1 (0.6) for doc 0 and label 0 (0.3) for doc 1; at
  # threshold 0.3 both count: P@1 = 1/2; above it doc 1 predicts nothing.
  assert mm.precision_recall_at_k(scores, Y, 1, threshold=0.3) == (0.5, 0.5)
  assert mm.precision_recall_at_k(scores, Y, 1, threshold=0.31) == (0.0, 0.0)


def test_report_counts_scores_on_the_threshold():
  Y = np.array([[1, 0], [0, 1]])
  scores = np.array([[0.4, 0.4], [0.39, 0.4]])
  report = mm.multilabel_report(Y, scores, threshold=0.4)
  # Predicted: {0, 1} and {1}: tp 2, fp 1, fn 0.
  assert report['micro_precision'] == pytest.approx(2 / 3)
  assert report['micro_recall'] == 1.0
  assert report['predicted_per_document'] == 1.5


def test_tune_threshold_on_a_plateau_takes_the_threshold_nearest_one_half():
  # Positives score 0.9, negatives 0.1: every threshold in (0.1, 0.9]
  # separates them, F1 = 1 on the plateau 0.11 .. 0.90: the tie goes to 0.5.
  Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
  scores = np.where(Y > 0, 0.9, 0.1)
  best, table = mm.tune_threshold(scores, Y)
  values = dict(table)
  assert best == 0.5
  plateau = [t for t, v in table if v == 1.0]
  assert min(plateau) == 0.11 and max(plateau) == 0.9   # 0.9 on 0.9 counts
  assert values[0.1] < 1.0 and values[0.91] == 0.0
  # A plateau below 0.5: positives at 0.3, negatives at 0.2. F1 = 1 for
  # thresholds 0.21 .. 0.30 (0.30 itself: a score on the threshold counts);
  # the nearest to 0.5 is 0.30, the plateau's top, only with >=.
  scores = np.where(Y > 0, 0.3, 0.2)
  best, table = mm.tune_threshold(scores, Y)
  assert best == 0.3
  assert [t for t, v in table if v == 1.0] == list(GRID[16:26])
  # A plateau above 0.5 (positives 0.8, negatives 0.7): its bottom, 0.71.
  scores = np.where(Y > 0, 0.8, 0.7)
  assert mm.tune_threshold(scores, Y)[0] == 0.71
  # The macro-F1 tie-break is the same rule.
  assert mm.tune_threshold(np.where(Y > 0, 0.9, 0.1), Y,
                           metric='macro_f1')[0] == 0.5
