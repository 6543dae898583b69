"""The scikit-learn estimator on texts and on feature matrices.

scikit-learn's own checks (numeric input only) are in
tests/test_sklearn_conformance.py; these tests feed texts too, and compare
the weighted fits with scikit-learn's LogisticRegression at convergence.
"""

import dataclasses
import inspect
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from linjax.core.errors import ConfigError
from linjax.engine import chunk_program
from linjax.engine import training
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.estimator import LinjaxClassifier
from linjax.estimator_options import EstimatorOptions
from linjax.text.featurizer_options import FeaturizerOptions

WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'.split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it'.split()


def _task(n=90, seed=0, names=None):
  """Each document: 3 class words among 5 shared filler words."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS) if names is None else names
  texts, labels = [], []
  for i in range(n):
    label = names[i % len(names)]
    toks = list(rng.choice(WORDS[label], 3)) + list(rng.choice(COMMON, 5))
    rng.shuffle(toks)
    texts.append(' '.join(toks))
    labels.append(label)
  return texts, np.array(labels)


# Five passes, not the plan of min_steps (test_estimator_convergence.py).
FAST = dict(epochs=5, min_steps=0, buckets=0, ngrams=1, min_df=1,
            shape_ngrams=0, learning_rate=1.0)


def _dense_problem(n=60, num_classes=3, seed=0):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(num_classes, 4))
  y = np.arange(n) % num_classes
  X = centres[y] + 1.5 * rng.normal(size=(n, 4))
  return (X - X.mean(0)) / X.std(0), y


def _converged(X, **kw):
  """Full-batch gradient descent at a constant step of 1, to convergence
  (strongly convex), on X's raw columns (``standardize=False``): the
  objective LogisticRegression minimises on X.

  The estimator divides the learning rate by a factor from the data
  (`linjax.estimator_scaling`); a one-pass fit reads it.
  """
  n = X.shape[0]
  shape = dict(batch_size=n, token_budget=8 * n, min_steps=0,
               standardize=kw.pop('standardize', False))
  probe = LinjaxClassifier(epochs=1, **shape).fit(X, np.arange(n) % 2)
  return LinjaxClassifier(optimizer='sgd', schedule='constant',
                          learning_rate=1.0 / probe.scaling_.step,
                          epochs=400, tol=None, **shape, **kw)


# -- texts -------------------------------------------------------------------


def test_fit_predict_score_on_texts():
  texts, y = _task()
  clf = LinjaxClassifier(**FAST).fit(texts, y)
  np.testing.assert_array_equal(clf.classes_, ['health', 'sports', 'tech'])
  proba = clf.predict_proba(['doctor drug nurse', 'goal team ball'])
  assert proba.shape == (2, 3)
  np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
  np.testing.assert_allclose(
      clf.predict_log_proba(['doctor drug nurse', 'goal team ball']),
      np.log(proba), rtol=1e-10)
  assert list(clf.predict(['doctor drug nurse', 'goal team ball',
                           'chip cloud app'])) == ['health', 'sports', 'tech']
  test_texts, test_y = _task(seed=1)
  assert clf.score(test_texts, test_y) > 0.9
  z = clf.decision_function(test_texts)
  assert z.shape == (90, 3)
  np.testing.assert_array_equal(clf.predict(test_texts),
                                clf.classes_[np.argmax(z, axis=1)])
  # coef_/intercept_ in scikit-learn's layout give the same scores.
  x = clf.featurizer_.transform(test_texts).to_dense()
  np.testing.assert_allclose(x @ clf.coef_.T + clf.intercept_, z, atol=1e-5)
  assert clf.featurizer_.options == FeaturizerOptions(
      buckets=0, ngrams=1, min_df=1, shape_ngrams=0)
  assert not hasattr(clf, 'n_features_in_')
  assert clf.n_iter_ == 5


def test_classes_sorted_and_integer_labels():
  texts, y = _task(n=60)
  y_int = np.array([{'health': 7, 'sports': 3, 'tech': 5}[v] for v in y])
  clf = LinjaxClassifier(**FAST).fit(texts, y_int)
  np.testing.assert_array_equal(clf.classes_, [3, 5, 7])
  assert set(clf.predict(texts[:6])) <= {3, 5, 7}
  assert clf.score(texts, y_int) > 0.9


def test_continuous_targets_are_refused():
  texts, _ = _task(n=30)
  with pytest.raises(ValueError, match='Unknown label type: continuous'):
    LinjaxClassifier(**FAST).fit(texts, np.linspace(0, 1, 30))


def test_binary_decision_function_is_the_log_odds_of_class_1():
  texts, y = _task(n=60, names=['health', 'tech'])
  clf = LinjaxClassifier(**FAST).fit(texts, y)
  test_texts, _ = _task(n=20, seed=3, names=['health', 'tech'])
  d = clf.decision_function(test_texts)
  assert d.shape == (20,)
  proba = clf.predict_proba(test_texts)
  np.testing.assert_allclose(d, np.log(proba[:, 1] / proba[:, 0]),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(clf.predict(test_texts),
                                clf.classes_[(d > 0).astype(int)])
  assert clf.coef_.shape == (1, clf.featurizer_.num_features)
  assert clf.intercept_.shape == (1,)


def test_unfitted_estimator_raises_not_fitted():
  clf = LinjaxClassifier()
  for method in ('predict', 'predict_proba', 'predict_log_proba',
                 'decision_function'):
    with pytest.raises(NotFittedError):
      getattr(clf, method)(['some text'])
  with pytest.raises(NotFittedError):
    clf.coef_  # pylint: disable=pointless-statement
  assert not hasattr(clf, 'intercept_')


def test_column_vector_y_is_ravelled_with_a_warning():
  texts, y = _task(n=60)
  flat = LinjaxClassifier(**FAST).fit(texts, y)
  with pytest.warns(DataConversionWarning):
    column = LinjaxClassifier(**FAST).fit(texts, y[:, None])
  np.testing.assert_array_equal(column.classes_, flat.classes_)
  np.testing.assert_array_equal(column.predict_proba(texts),
                                flat.predict_proba(texts))


def test_bad_labels_and_texts():
  texts, y = _task(n=30)
  clf = LinjaxClassifier(**FAST)
  with pytest.raises(ValueError, match='one class'):
    clf.fit(texts, ['a'] * 30)
  with pytest.raises(ValueError, match='inconsistent numbers of samples'):
    clf.fit(texts, y[:-1])
  with pytest.raises(ValueError, match='y to be passed'):
    clf.fit(texts, None)
  with pytest.raises(ValueError, match='string object received'):
    clf.fit('one text', y[:1])
  with pytest.raises(ValueError, match=r'X\[1\] is int'):
    clf.fit(['a text', 3] + texts[2:], y)
  clf.fit(texts, y)
  with pytest.raises(ValueError, match='fitted on texts'):
    clf.predict(np.ones((2, 3)))
  numeric = LinjaxClassifier().fit(*_dense_problem())
  with pytest.raises(ValueError, match='fitted on a feature matrix of 4 '
                     'columns.*TfidfVectorizer'):
    numeric.predict(['a text'])


def test_texts_as_numpy_tuple_and_iterator():
  texts, y = _task(n=60)
  ref = LinjaxClassifier(**FAST).fit(texts, y).predict_proba(texts)
  for kind in (np.array, tuple, iter):
    clf = LinjaxClassifier(**FAST).fit(kind(texts), y)
    np.testing.assert_array_equal(clf.predict_proba(kind(texts)), ref)


def test_pickle_round_trip():
  texts, y = _task(n=60)
  clf = LinjaxClassifier(**FAST).fit(texts, y)
  twin = pickle.loads(pickle.dumps(clf))
  np.testing.assert_array_equal(twin.predict_proba(texts),
                                clf.predict_proba(texts))


# -- parameters --------------------------------------------------------------


def test_defaults_are_the_options_defaults():
  signature = inspect.signature(LinjaxClassifier)
  defaults = {k: p.default for k, p in signature.parameters.items()}
  fields = {}
  for cls in (FeaturizerOptions, OptimizerOptions, TrainOptions):
    fields.update({(cls, f.name): f.default for f in dataclasses.fields(cls)})
  renamed = {(OptimizerOptions, 'name'): 'optimizer',
             (TrainOptions, 'seed'): 'random_state',
             (TrainOptions, 'update_path'): 'update'}
  # Options the estimator leaves out (see linjax/estimator.py's docstring).
  # train.class_weight ('none' | 'balanced') gives way to the estimator's
  # own class_weight (None | 'balanced' | dict).
  # train.l2 gives way to the estimator's l2='auto' (a number passes
  # through), train.loss to loss=None (y decides: softmax or sigmoid).
  own_defaults = ('class_weight', 'l2', 'loss')
  left_out = {'patience', 'metric', 'checkpoint_every', 'checkpoint_seconds',
              'steps_per_call', 'max_host_mb', *own_defaults}
  for (cls, field), default in fields.items():
    if field in left_out:
      assert field in own_defaults or field not in defaults
      continue
    param = renamed.get((cls, field), field)
    assert defaults.pop(param) == default, (cls, field)
  own = EstimatorOptions()
  assert defaults == {'class_weight': None, 'l2': 'auto', 'loss': None,
                      'tol': own.tol,
                      'n_iter_no_change': own.n_iter_no_change,
                      'min_steps': own.min_steps,
                      'standardize': own.standardize}


def test_get_set_params_and_clone_round_trip():
  clf = LinjaxClassifier(epochs=3, ngrams=1, class_weight={'a': 2.0})
  params = clf.get_params()
  assert params['epochs'] == 3 and params['ngrams'] == 1
  assert params['learning_rate'] == OptimizerOptions().learning_rate
  assert clf.set_params(learning_rate=0.5, optimizer='adam') is clf
  assert clf.get_params()['learning_rate'] == 0.5
  twin = clone(clf)
  assert twin.get_params() == clf.get_params()
  assert LinjaxClassifier(**twin.get_params()).get_params() == \
      clf.get_params()
  texts, y = _task(n=30)
  fitted = LinjaxClassifier(**FAST).fit(texts, y)
  assert not hasattr(clone(fitted), 'params_')
  with pytest.raises(ValueError, match="Invalid parameter 'epoch'"):
    clf.set_params(epoch=3)
  with pytest.raises(TypeError, match='epoch'):
    LinjaxClassifier(epoch=3)  # pylint: disable=unexpected-keyword-arg


def test_cross_val_score_and_grid_search():
  texts, y = _task(n=90)
  scores = cross_val_score(LinjaxClassifier(**FAST), texts, y, cv=3)
  assert scores.shape == (3,)
  assert scores.min() > 0.85
  search = GridSearchCV(LinjaxClassifier(**FAST),
                        {'learning_rate': [1e-4, 1.0]}, cv=3,
                        scoring='neg_log_loss')
  search.fit(texts, y)
  assert search.best_params_ == {'learning_rate': 1.0}
  assert search.best_estimator_.learning_rate == 1.0


def test_bad_parameters_name_the_parameter_at_fit():
  texts, y = _task(n=30)
  cases = [
      (dict(learning_rate=-1.0),
       r'^LinjaxClassifier: learning_rate must be > 0, got -1\.0$'),
      (dict(optimizer='sgdd'), r"^LinjaxClassifier: optimizer must name an "
       r"optimizer: unknown optimizer 'sgdd'; known: sgd, adagrad, adam"),
      (dict(loss='hinj'), r"^LinjaxClassifier: loss must name a loss: "
       r"unknown loss 'hinj'; known: softmax, sigmoid, hinge"),
      (dict(random_state=-1), r'^LinjaxClassifier: random_state must be >= '
       r'0, got -1$'),
      (dict(ngrams=0, epochs=0), r'^LinjaxClassifier: ngrams must be >= 1, '
       r'got 0 \(and 1 more problem: epochs must be >= 1, got 0\)$'),
      (dict(class_weight='auto'), r"class_weight must be None, 'balanced' or "
       r"a dict \{label: weight\}, got 'auto'"),
      (dict(l2=1.0, learning_rate=1.0),
       r'l2 / weight_decay too large for learning_rate=1\.0'),
      (dict(l2='none'), r"^LinjaxClassifier: l2 must be 'auto' or a number "
       r">= 0, got 'none'$"),
      (dict(l2=-0.5), r'^LinjaxClassifier: l2 must be >= 0, got -0\.5$'),
      (dict(tol=-1e-3), r'^LinjaxClassifier: tol must be >= 0, got -0\.001$'),
      (dict(n_iter_no_change=0), r'^LinjaxClassifier: n_iter_no_change must '
       r'be >= 1, got 0$'),
      (dict(min_steps=2.5), r'^LinjaxClassifier: min_steps must be an '
       r'integer, got 2\.5$'),
      (dict(standardize='yes'), r'^LinjaxClassifier: standardize must be '
       r"True or False, got 'yes'$"),
  ]
  for params, message in cases:
    clf = LinjaxClassifier(**params)  # no validation before fit
    with pytest.raises(ConfigError, match=message):
      clf.fit(texts, y)


def test_random_state_generator_draws_the_seed():
  texts, y = _task(n=30)
  seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
  drawn = LinjaxClassifier(random_state=np.random.RandomState(0), **FAST)
  given = LinjaxClassifier(random_state=seed, **FAST)
  np.testing.assert_array_equal(drawn.fit(texts, y).params_.W,
                                given.fit(texts, y).params_.W)


# -- feature matrices --------------------------------------------------------


def test_feature_matrices_dense_and_sparse_agree():
  # Unstandardised: the same rows (a sparse X never is standardised).
  X, y = _dense_problem()
  dense = LinjaxClassifier(standardize=False).fit(X, y)
  assert dense.n_features_in_ == 4 and dense.featurizer_ is None
  for to_sparse in (sp.csr_matrix, sp.csc_matrix, sp.coo_array):
    clf = LinjaxClassifier().fit(to_sparse(X), y)
    assert clf.scaling_.identity
    np.testing.assert_allclose(clf.predict_proba(to_sparse(X)),
                               dense.predict_proba(X), rtol=1e-6)
  with pytest.raises(ValueError, match='X has 3 features, but '
                     'LinjaxClassifier is expecting 4 features'):
    dense.predict(X[:, :3])


def test_pipelines_with_sklearn_vectorizers():
  texts, y = _task(n=90)
  test_texts, test_y = _task(n=60, seed=2)
  for vectorizer in (TfidfVectorizer(), HashingVectorizer(n_features=2**12)):
    pipe = make_pipeline(vectorizer, LinjaxClassifier(epochs=5))
    assert pipe.fit(texts, y).score(test_texts, test_y) > 0.9


# -- weights -------------------------------------------------------------------


def _centred_close(ours, theirs, X):
  """Same probabilities and the same coefficients up to a shift per feature."""
  np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                             atol=2e-4)
  coef, ref = ours.coef_, theirs.coef_
  np.testing.assert_allclose(coef - coef.mean(0), ref - ref.mean(0),
                             atol=5e-4)


def test_sample_and_class_weights_match_logistic_regression():
  X, y = _dense_problem()
  keep = (y != 2) | (np.arange(60) % 9 == 2)
  X, y = X[keep], y[keep]   # imbalanced: 20, 20 and 7 documents
  n, l2 = y.shape[0], 0.01
  sw = np.random.default_rng(1).uniform(0.2, 3.0, size=n)
  for weights in (dict(sample_weight=sw), dict(class_weight='balanced'),
                  dict(class_weight={0: 0.5, 1: 1.0, 2: 4.0}),
                  dict(class_weight='balanced', sample_weight=sw)):
    sample_weight = weights.pop('sample_weight', None)
    ours = _converged(X, l2=l2, **weights).fit(X, y,
                                               sample_weight=sample_weight)
    theirs = LogisticRegression(C=1 / (2 * l2 * n), tol=1e-10,
                                max_iter=10_000, **weights)
    theirs.fit(X, y, sample_weight=sample_weight)
    _centred_close(ours, theirs, X)


def test_binary_weights_match_logistic_regression():
  X, y = _dense_problem(n=40, num_classes=2)
  n, l2 = 40, 0.01
  sw = np.random.default_rng(2).uniform(0.2, 3.0, size=n)
  ours = _converged(X, l2=l2, class_weight={0: 3.0, 1: 1.0})
  ours.fit(X, y, sample_weight=sw)
  # Two softmax columns with L2 on both = one logistic vector with half the
  # penalty, so C doubles: C = 1 / (l2 N).
  theirs = LogisticRegression(C=1 / (l2 * n), tol=1e-10, max_iter=10_000,
                              class_weight={0: 3.0, 1: 1.0})
  theirs.fit(X, y, sample_weight=sw)
  np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=5e-4)
  np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=5e-4)
  np.testing.assert_allclose(ours.decision_function(X),
                             theirs.decision_function(X), atol=2e-3)


def test_unit_weights_reproduce_the_unweighted_fit():
  texts, y = _task(n=60)
  plain = LinjaxClassifier(**FAST).fit(texts, y)
  weighted = LinjaxClassifier(**FAST).fit(texts, y, sample_weight=np.ones(60))
  np.testing.assert_allclose(weighted.params_.W, plain.params_.W, atol=1e-6)
  # Balanced classes: 'balanced' is 1 for everyone.
  balanced = LinjaxClassifier(class_weight='balanced', **FAST).fit(texts, y)
  np.testing.assert_allclose(balanced.params_.W, plain.params_.W, atol=1e-6)


def test_sample_weight_equals_repetition_at_convergence():
  # Integer weights averaging 1: the weighted mean over N rows is the mean
  # over the repeated rows (also N), so both fits minimise one objective.
  X, y = _dense_problem(n=30)
  sw = np.tile([0, 1, 2, 1, 2, 0], 5)
  weighted = _converged(X, l2=0.01).fit(X, y, sample_weight=sw)
  repeated = _converged(X, l2=0.01).fit(X.repeat(sw, axis=0),
                                        y.repeat(sw))
  np.testing.assert_allclose(weighted.predict_proba(X),
                             repeated.predict_proba(X), atol=2e-4)


def test_bad_sample_weights():
  X, y = _dense_problem(n=30)
  clf = LinjaxClassifier()
  with pytest.raises(ValueError, match=r'sample_weight.shape == \(29,\)'):
    clf.fit(X, y, sample_weight=np.ones(29))
  with pytest.raises(ValueError, match='Negative values'):
    clf.fit(X, y, sample_weight=-np.ones(30))
  with pytest.raises(ValueError, match='at least one non-zero'):
    clf.fit(X, y, sample_weight=np.zeros(30))
  with pytest.raises(ValueError, match='NaN'):
    clf.fit(X, y, sample_weight=np.full(30, np.nan))
  with pytest.raises(ValueError, match=r'are not in class_weight'):
    LinjaxClassifier(class_weight={0: 1.0, 7: 2.0}).fit(X, y)


# -- partial_fit ---------------------------------------------------------------


def test_partial_fit_contract():
  texts, y = _task(n=90)
  clf = LinjaxClassifier(**FAST)
  with pytest.raises(ValueError, match='classes must be passed'):
    clf.partial_fit(texts[:30], y[:30])
  clf.partial_fit(texts[:30], y[:30], classes=np.unique(y))
  featurizer = clf.featurizer_
  with pytest.raises(ValueError, match='not in classes'):
    clf.partial_fit(texts[:3], ['health', 'tech', 'arts'])
  with pytest.raises(ValueError, match='not the same as on the first call'):
    clf.partial_fit(texts[:3], y[:3], classes=['health', 'tech'])
  with pytest.raises(ValueError, match="'balanced' is not supported"):
    clf.set_params(class_weight='balanced').partial_fit(texts[:3], y[:3])
  clf.set_params(class_weight=None)
  # Later calls continue from the current params with the same featuriser:
  # the same as the engine's fit of one epoch from those params.
  start = clf.params_
  clf.partial_fit(texts[30:60], y[30:60])
  assert clf.featurizer_ is featurizer
  expected = training.fit(
      featurizer.transform(texts[30:60]),
      np.searchsorted(clf.classes_, y[30:60]).astype(np.int32), 3,
      optimizer=OptimizerOptions(learning_rate=1.0),
      training=TrainOptions(epochs=1, checkpoint_every=0), init=start)
  np.testing.assert_allclose(clf.params_.W, expected.params.W, atol=1e-6)
  assert clf.n_iter_ == 1


def test_partial_fit_reuses_the_compiled_program():
  X, y = _dense_problem(n=96)
  clf = LinjaxClassifier(schedule='constant', learning_rate=0.5)
  clf.partial_fit(X[:32], y[:32], classes=[0, 1, 2])
  traces = chunk_program.TRACE_COUNTS['epoch']
  for start in (32, 64):
    clf.partial_fit(X[start:start + 32], y[start:start + 32])
  assert chunk_program.TRACE_COUNTS['epoch'] == traces
  with pytest.raises(ValueError, match='X has 3 features'):
    clf.partial_fit(X[:32, :3], y[:32])


def test_partial_fit_loop_learns_texts():
  texts, y = _task(n=300)
  clf = LinjaxClassifier(buckets=2**12, weighting='tf', min_df=1,
                         schedule='constant', learning_rate=2.0)
  for start in range(0, 300, 50):
    clf.partial_fit(texts[start:start + 50], y[start:start + 50],
                    classes=['health', 'sports', 'tech'])
  test_texts, test_y = _task(n=60, seed=5)
  assert clf.score(test_texts, test_y) > 0.9


def test_readme_snippet():
  texts, labels = _task(n=90)
  # --- README ---
  pipe = make_pipeline(TfidfVectorizer(), LinjaxClassifier())
  pipe.fit(texts, labels)
  clf = LinjaxClassifier(class_weight='balanced').fit(texts, labels)
  stream = LinjaxClassifier(buckets=2**18, weighting='tf', min_df=1,
                            schedule='constant', learning_rate=2.0)
  for start in range(0, len(texts), 30):
    stream.partial_fit(texts[start:start + 30], labels[start:start + 30],
                       classes=['health', 'sports', 'tech'])
  # --- end ---
  test_texts, test_y = _task(n=60, seed=4)
  for model in (pipe, clf, stream):
    assert model.score(test_texts, test_y) > 0.9


# -- multi-label y (scikit-learn's multilabel-indicator) ------------------------


def _multilabel_problem(n=60, labels=3, seed=0):
  """Dense standardised X [n, 4]; label c is on where a noisy linear score
  of X is positive (some rows get none, some several)."""
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, 4))
  scores = X @ rng.normal(size=(4, labels)) + 0.8 * rng.normal(size=(n, labels))
  return (X - X.mean(0)) / X.std(0), (scores > 0.3).astype(np.int64)


def test_multilabel_y_matches_one_vs_rest_logistic_regression():
  """2-D 0/1 y trains the sigmoid loss: per label, the l2-penalised logistic
  regression scikit-learn's OneVsRestClassifier(LogisticRegression) fits
  (one column per label, so C = 1 / (2 l2 N) as for the multinomial case)."""
  from sklearn.multiclass import OneVsRestClassifier  # pylint: disable=g-import-not-at-top
  X, Y = _multilabel_problem()
  assert (Y.sum(1) == 0).any() and (Y.sum(1) > 1).any()
  n, l2 = Y.shape[0], 0.01
  sw = np.random.default_rng(3).uniform(0.2, 3.0, size=n)
  ours = _converged(X, l2=l2).fit(X, Y, sample_weight=sw)
  # OneVsRestClassifier is one LogisticRegression per column; fitted here
  # column by column because its fit routes no sample_weight by default.
  theirs = [LogisticRegression(C=1 / (2 * l2 * n), tol=1e-10,
                               max_iter=10_000).fit(X, Y[:, c],
                                                    sample_weight=sw)
            for c in range(Y.shape[1])]
  assert ours.multilabel_
  np.testing.assert_array_equal(ours.classes_, np.arange(Y.shape[1]))
  np.testing.assert_allclose(ours.coef_, np.concatenate(
      [e.coef_ for e in theirs]), atol=5e-4)
  np.testing.assert_allclose(ours.intercept_, np.concatenate(
      [e.intercept_ for e in theirs]), atol=5e-4)
  proba = np.stack([e.predict_proba(X)[:, 1] for e in theirs], axis=1)
  np.testing.assert_allclose(ours.predict_proba(X), proba, atol=2e-4)
  np.testing.assert_allclose(ours.decision_function(X), np.stack(
      [e.decision_function(X) for e in theirs], axis=1), atol=2e-3)
  np.testing.assert_allclose(np.exp(ours.predict_log_proba(X)),
                             ours.predict_proba(X), rtol=1e-12)
  pred = ours.predict(X)
  assert pred.dtype == Y.dtype and pred.shape == Y.shape
  np.testing.assert_array_equal(pred, proba >= 0.5)
  # Unweighted, against OneVsRestClassifier itself.
  ours = _converged(X, l2=l2).fit(X, Y)
  ovr = OneVsRestClassifier(LogisticRegression(
      C=1 / (2 * l2 * n), tol=1e-10, max_iter=10_000)).fit(X, Y)
  np.testing.assert_allclose(ours.predict_proba(X), ovr.predict_proba(X),
                             atol=2e-4)
  np.testing.assert_array_equal(ours.predict(X), ovr.predict(X))


def test_multilabel_y_on_texts_sparse_y_and_two_labels():
  texts, y = _task(n=90)
  # Two overlapping tags: 'health', and "says 'the'".
  Y = np.stack([[label == 'health' for label in y],
                ['the' in t.split() for t in texts]], axis=1)
  assert (Y.sum(1) == 2).any() and (Y.sum(1) == 0).any()
  kw = dict(FAST, learning_rate=8.0, epochs=20)
  clf = LinjaxClassifier(**kw).fit(texts, Y)
  assert clf.coef_.shape == (2, clf.featurizer_.num_features)
  assert clf.intercept_.shape == (2,)
  assert clf.predict(texts).dtype == bool
  np.testing.assert_array_equal(clf.predict(texts), Y)   # separable tags
  dense = LinjaxClassifier(**FAST).fit(texts, Y.astype(np.int32))
  sparse = LinjaxClassifier(**FAST).fit(texts, sp.csr_array(Y.astype(int)))
  np.testing.assert_array_equal(sparse.params_.W, dense.params_.W)
  # A single-label fit afterwards is softmax again.
  clf.fit(texts, y)
  assert not clf.multilabel_ and clf.predict(texts[:2]).ndim == 1


def test_multilabel_y_refuses_class_weight_and_partial_fit():
  X, Y = _multilabel_problem()
  with pytest.raises(ValueError, match='class_weight is for single-label y'):
    LinjaxClassifier(class_weight='balanced').fit(X, Y)
  with pytest.raises(ValueError, match='partial_fit takes single-label y'):
    LinjaxClassifier().partial_fit(X, Y, classes=[0, 1, 2])
  fitted = LinjaxClassifier(epochs=1).fit(X, Y)
  with pytest.raises(ValueError, match='partial_fit takes single-label y'):
    fitted.partial_fit(X, Y[:, 0])
