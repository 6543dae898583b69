"""LinjaxClassifier(loss=...): the names of the table of losses (issue 21).

Every name `TrainOptions.loss` takes works here, y's kind must match the
loss's label kind, and a margin loss has no predict_proba (AttributeError,
``hasattr`` False) while decision_function works, as scikit-learn's
``SGDClassifier(loss='hinge')``. The hinge fit is checked against the
objective at scikit-learn's Crammer-Singer LinearSVC solution, computed in
numpy here.
"""

import pickle

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from linjax.core import losses
from linjax.core.errors import ConfigError
from linjax.estimator import LinjaxClassifier


def _problem(n=90, num_classes=3, seed=0):
  rng = np.random.default_rng(seed)
  y = np.arange(n) % num_classes
  X = rng.normal(size=(num_classes, 4))[y] + 0.9 * rng.normal(size=(n, 4))
  return StandardScaler().fit_transform(X), y


def _multi_hot(y, num_classes=3):
  Y = np.eye(num_classes, dtype=int)[y]
  Y[::4, 0] = 1   # some rows hold two labels
  return Y


@pytest.mark.parametrize('name', losses.loss_names())
def test_every_table_name_trains_and_predicts_its_way(name):
  X, y = _problem()
  entry = losses.get_loss(name)
  target = _multi_hot(y) if entry.multi_label else y
  clf = LinjaxClassifier(loss=name, min_steps=0)
  assert hasattr(clf, 'predict_proba') == entry.has_probabilities
  clf.fit(X, target)
  assert clf.loss_ == name and clf.multilabel_ == entry.multi_label
  assert clf.probability_ == entry.probability
  assert hasattr(clf, 'predict_proba') == entry.has_probabilities
  assert hasattr(clf, 'predict_log_proba') == entry.has_probabilities
  z = clf.decision_function(X)
  assert z.shape == (90, 3) and np.all(np.isfinite(z))
  pred = clf.predict(X)
  if entry.multi_label:
    np.testing.assert_array_equal(pred, (z >= 0).astype(target.dtype))
  else:
    np.testing.assert_array_equal(pred, np.argmax(z, axis=1))
    assert clf.score(X, y) > 0.6
  if entry.has_probabilities:   # the table's own map, in float64 here
    np.testing.assert_allclose(clf.predict_proba(X), entry.proba(z),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)),
                               clf.predict_proba(X), rtol=1e-6, atol=1e-12)


def test_hinge_refuses_probabilities_like_sgdclassifier():
  X, y = _problem()
  clf = LinjaxClassifier(loss='hinge')
  assert not hasattr(clf, 'predict_proba')
  clf.fit(X, y)
  for method in ('predict_proba', 'predict_log_proba'):
    with pytest.raises(AttributeError, match=method) as error:
      getattr(clf, method)(X)
    # scikit-learn's available_if chains our reason.
    assert "not available for loss='hinge': a margin loss" in str(
        error.value.__cause__)
  twin = pickle.loads(pickle.dumps(clf))
  assert not hasattr(twin, 'predict_proba')
  np.testing.assert_array_equal(twin.decision_function(X),
                                clf.decision_function(X))
  # Binary: one score, positive where classes_[1] is predicted.
  binary = LinjaxClassifier(loss='hinge').fit(X[y < 2], y[y < 2])
  d = binary.decision_function(X[y < 2])
  assert d.shape == (60,)
  np.testing.assert_array_equal(binary.predict(X[y < 2]), (d > 0) * 1)


def _crammer_singer_objective(W, b, X, y, l2):
  """mean_i max(0, 1 + max_{k != y_i} z_ik - z_iy) + l2 ||W||^2 (numpy)."""
  z = X @ W + b
  true = z[np.arange(len(y)), y]
  others = np.where(np.eye(W.shape[1], dtype=bool)[y], -np.inf, z)
  return np.maximum(0.0, 1.0 + others.max(1) - true).mean() + l2 * (W ** 2).sum()


def test_hinge_minimises_the_crammer_singer_objective():
  X, y = _problem(n=60)
  n, l2 = 60, 0.01
  ours = LinjaxClassifier(loss='hinge', l2=l2, tol=None, epochs=3000,
                          min_steps=0, batch_size=n, token_budget=8 * n,
                          learning_rate=50.0).fit(X, y)
  # LinearSVC's Crammer-Singer form is 0.5 ||W||^2 + C sum_i xi_i: C =
  # 1 / (2 l2 N); a large intercept_scaling leaves the bias unpenalised.
  svc = LinearSVC(multi_class='crammer_singer', C=1 / (2 * l2 * n),
                  intercept_scaling=100.0, tol=1e-8, max_iter=100_000)
  svc.fit(X, y)
  best = _crammer_singer_objective(svc.coef_.T, svc.intercept_, X, y, l2)
  got = _crammer_singer_objective(ours.params_.W.astype(np.float64),
                                  ours.params_.b, X, y, l2)
  assert got <= best * 1.01 + 1e-4, (got, best)
  agree = np.mean(ours.predict(X) == svc.predict(X))
  assert agree >= 0.95


def test_loss_must_fit_ys_kind_and_options_name_the_parameter():
  X, y = _problem()
  with pytest.raises(ValueError, match="loss='sigmoid' is multi-label"):
    LinjaxClassifier(loss='sigmoid').fit(X, y)
  with pytest.raises(ValueError, match="loss='hinge' takes one class per "
                     'document'):
    LinjaxClassifier(loss='hinge').fit(X, _multi_hot(y))
  with pytest.raises(ValueError, match="loss='sigmoid' is multi-label"):
    LinjaxClassifier(loss='sigmoid').partial_fit(X, y, classes=[0, 1, 2])
  with pytest.raises(ConfigError, match=r"^LinjaxClassifier: label_smoothing "
                     r"must be 0 with .*'hinge'"):
    LinjaxClassifier(loss='hinge', label_smoothing=0.1).fit(X, y)
  # loss=None with a multi-hot y is sigmoid, which takes no smoothing.
  with pytest.raises(ConfigError, match=r"^LinjaxClassifier: label_smoothing "
                     r"must be 0 with .*'sigmoid'"):
    LinjaxClassifier(label_smoothing=0.1).fit(X, _multi_hot(y))


def test_label_smoothing_and_module_name_losses():
  X, y = _problem()
  plain = LinjaxClassifier(min_steps=0, tol=None).fit(X, y)
  smooth = LinjaxClassifier(min_steps=0, tol=None,
                            label_smoothing=0.2).fit(X, y)
  assert smooth.loss_ == 'softmax'
  # Smoothing pulls the probabilities off 0 and 1.
  assert smooth.predict_proba(X).max() < plain.predict_proba(X).max()
  assert smooth.predict_proba(X).min() > plain.predict_proba(X).min()
  # A user's function by MODULE:NAME: class labels, no probabilities.
  ref = 'optax.losses:multiclass_hinge_loss'
  clf = LinjaxClassifier(loss=ref, min_steps=0).fit(X, y)
  assert clf.loss_ == ref and not hasattr(clf, 'predict_proba')
  hinge = LinjaxClassifier(loss='hinge', min_steps=0).fit(X, y)
  np.testing.assert_allclose(clf.decision_function(X),
                             hinge.decision_function(X), atol=1e-5)


def test_partial_fit_keeps_the_fitted_loss():
  X, y = _problem()
  clf = LinjaxClassifier(loss='hinge', schedule='constant')
  clf.partial_fit(X[:45], y[:45], classes=[0, 1, 2])
  clf.set_params(loss=None)   # the fitted model keeps training with hinge
  clf.partial_fit(X[45:], y[45:])
  assert clf.loss_ == 'hinge' and not hasattr(clf, 'predict_proba')


@parametrize_with_checks(
    [LinjaxClassifier(loss='hinge')],
    expected_failed_checks=lambda estimator: {
        'check_sample_weight_equivalence_on_dense_data': 'minibatch SGD',
        'check_sample_weight_equivalence_on_sparse_data': 'minibatch SGD'})
def test_hinge_passes_sklearns_checks(estimator, check):
  check(estimator)
