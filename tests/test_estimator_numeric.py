"""LinjaxClassifier on numeric feature matrices: standardised inside, folded
back onto the raw columns, a step and a penalty taken from the data
(linjax/estimator_scaling.py), checked against scikit-learn's StandardScaler
and LogisticRegression and against numpy computations written here."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from linjax.estimator import LinjaxClassifier
from linjax.estimator_scaling import fit_scaling
from linjax.estimator_scaling import to_raw
from linjax.estimator_scaling import to_scaled
from linjax.estimator_scaling import with_step
from linjax.core.model import Params
from linjax.text.csr import from_rows


def _unscaled(n=90, num_classes=3, seed=0):
  """Columns of very different units and offsets (like wine's)."""
  rng = np.random.default_rng(seed)
  y = np.arange(n) % num_classes
  centres = rng.normal(size=(num_classes, 5))
  X = centres[y] + 1.2 * rng.normal(size=(n, 5))
  return X * [1000.0, 1.0, 0.01, 30.0, 5.0] + [700.0, 2.0, 0.0, -50.0, 13.0], y


def test_coef_acts_on_the_raw_columns():
  X, y = _unscaled()
  clf = LinjaxClassifier().fit(X, y)
  assert clf.scaling_.mean is not None and not clf.scaling_.identity
  z = X @ clf.coef_.T.astype(np.float64) + clf.intercept_
  np.testing.assert_allclose(clf.decision_function(X), z, rtol=1e-4,
                             atol=1e-4 * np.abs(z).max())
  reference = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
  assert clf.score(X, y) >= reference.score(X, y) - 0.03
  # Binary: the one coefficient vector of scikit-learn's layout.
  binary = LinjaxClassifier().fit(X[y < 2], y[y < 2])
  d = X[y < 2] @ binary.coef_[0].astype(np.float64) + binary.intercept_[0]
  np.testing.assert_allclose(binary.decision_function(X[y < 2]), d,
                             rtol=1e-4, atol=1e-4 * np.abs(d).max())


def test_standardisation_is_standard_scalers_weighted_or_not():
  X, _ = _unscaled()
  X[:, 2] = 3.25   # a constant column keeps scale 1
  sw = np.random.default_rng(1).uniform(0.0, 3.0, size=X.shape[0])
  for weights in (None, sw):
    ours = fit_scaling(X, weights)
    theirs = StandardScaler().fit(X, sample_weight=weights)
    np.testing.assert_allclose(ours.mean, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale, theirs.scale_, rtol=1e-12)
  assert fit_scaling(X).scale[2] == 1.0
  assert fit_scaling(sp.csr_array(X)).identity
  assert fit_scaling(X, standardize=False).identity


def test_fit_equals_a_standard_scaler_pipeline_folded_back():
  X, y = _unscaled()
  kw = dict(l2=0.003, tol=None, min_steps=0, epochs=6)
  ours = LinjaxClassifier(**kw).fit(X, y)
  pipe = make_pipeline(StandardScaler(),
                       LinjaxClassifier(standardize=False, **kw)).fit(X, y)
  inner, scaler = pipe[-1], pipe[0]
  # The same rows, hence the same step factor and the same training.
  assert inner.scaling_.step == pytest.approx(ours.scaling_.step, rel=1e-6)
  np.testing.assert_allclose(ours.predict_proba(X), pipe.predict_proba(X),
                             atol=1e-4)
  # Folded back: W on raw columns = W on standardised ones / scale.
  np.testing.assert_allclose(ours.coef_, inner.coef_ / scaler.scale_,
                             rtol=1e-3, atol=1e-7)
  np.testing.assert_allclose(
      ours.intercept_, inner.intercept_ - inner.coef_ @ (
          scaler.mean_ / scaler.scale_), rtol=1e-3, atol=1e-3)


def test_fold_and_unfold_are_inverse():
  X, _ = _unscaled()
  scaling = fit_scaling(X)
  rng = np.random.default_rng(2)
  params = Params(rng.normal(size=(5, 3)).astype(np.float32),
                  rng.normal(size=3).astype(np.float32))
  raw = to_raw(scaling, params)
  Xs = (X - scaling.mean) / scaling.scale
  np.testing.assert_allclose(X @ raw.W + raw.b, Xs @ params.W + params.b,
                             rtol=1e-5, atol=1e-4)
  back = to_scaled(scaling, raw)
  np.testing.assert_allclose(back.W, params.W, rtol=1e-6)
  np.testing.assert_allclose(back.b, params.b, rtol=1e-5, atol=1e-5)


def test_step_factor_from_the_rows_second_moment():
  rng = np.random.default_rng(3)
  X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
  X[:7] = 0.0   # empty rows do not count in the mean norm
  x = from_rows([(np.arange(6), row) for row in X], 6)
  scaling = with_step(fit_scaling(X, standardize=False), x, docs_per_step=16)
  x32 = X.astype(np.float32).astype(np.float64)
  lam = np.linalg.eigvalsh(x32.T @ x32 / 200).max()
  norms = (x32 ** 2).sum(1)
  want = 1.0 / (16 * lam + norms[norms > 0].mean())
  assert scaling.step == pytest.approx(want, rel=1e-6)


def test_auto_l2_is_logistic_regressions_default_on_standardised_columns():
  # Converged (full batch, constant step), l2='auto' = 1 / (2 N) on the
  # standardised weights: LogisticRegression() after a StandardScaler.
  X, y = _unscaled(n=60)
  n = X.shape[0]
  shape = dict(batch_size=n, token_budget=8 * n, min_steps=0)
  probe = LinjaxClassifier(epochs=1, **shape).fit(X, y)
  ours = LinjaxClassifier(schedule='constant', tol=None, epochs=600,
                          learning_rate=1.0 / probe.scaling_.step,
                          **shape).fit(X, y)
  theirs = make_pipeline(StandardScaler(), LogisticRegression(
      tol=1e-10, max_iter=10_000)).fit(X, y)
  np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                             atol=2e-3)
  # A sparse matrix is not standardised: 'auto' is 0 there, as for texts.
  sparse = LinjaxClassifier(schedule='constant', tol=None, epochs=3,
                            min_steps=0, l2=0.0).fit(sp.csr_array(X), y)
  auto = LinjaxClassifier(schedule='constant', tol=None, epochs=3,
                          min_steps=0).fit(sp.csr_array(X), y)
  np.testing.assert_array_equal(auto.params_.W, sparse.params_.W)


def test_partial_fit_keeps_the_first_batchs_scaling():
  X, y = _unscaled(n=120)
  clf = LinjaxClassifier(schedule='constant')
  clf.partial_fit(X[:60], y[:60], classes=[0, 1, 2])
  first = clf.scaling_
  np.testing.assert_allclose(first.mean, X[:60].mean(0), rtol=1e-12)
  clf.partial_fit(X[60:], y[60:])
  assert clf.scaling_ is first
  z = X @ clf.coef_.T.astype(np.float64) + clf.intercept_
  np.testing.assert_allclose(clf.decision_function(X), z, rtol=1e-4,
                             atol=1e-4 * np.abs(z).max())
  reference = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
  assert clf.score(X, y) >= reference.score(X, y) - 0.05


def test_power_iteration_of_many_columns_finds_the_top_eigenvalue():
  from linjax import estimator_scaling  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(4)
  X = sp.random_array((400, 3000), density=0.01, random_state=5,
                      format='csr') + 0.0
  X.data = rng.uniform(0.1, 1.0, X.data.shape[0])
  assert X.shape[1] > estimator_scaling.EXACT
  want = np.linalg.eigvalsh((X.T @ X).toarray() / 400)[-1]
  got = estimator_scaling._largest_eigenvalue(X)  # pylint: disable=protected-access
  assert got == pytest.approx(want, rel=0.05) and got <= want * (1 + 1e-9)
