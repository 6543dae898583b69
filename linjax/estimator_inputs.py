"""The estimator's inputs: X (texts or a feature matrix), y and the weights.

What `LinjaxClassifier` does to its arguments before training or scoring:
X becomes `CsrFeatures` (through the fitted `Featurizer` for texts, or
scikit-learn's `validate_data` for a numeric matrix), y becomes [N] labels or
a uint8 [N, C] multilabel indicator, and ``sample_weight`` times
``class_weight`` becomes float32 [N] weights; bad input gets scikit-learn's
errors. It is apart from `linjax.estimator` because converting and checking
inputs is one concept, independent of the options and of the model itself.
Each function takes the estimator first: it reads its parameters and, where
scikit-learn's conventions ask, records what fitting saw on it
(``featurizer_``, ``n_features_in_``, the multi-label y's dtype).
"""

from __future__ import annotations

import collections.abc
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array
from sklearn.utils.validation import check_consistent_length
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import column_or_1d
from sklearn.utils.validation import validate_data

from linjax import estimator_scaling as scaling
from linjax.engine import training as engine
from linjax.engine.options import TrainOptions
from linjax.text.csr import CsrFeatures
from linjax.text.featurizer import Featurizer
from linjax.text.featurizer_options import FeaturizerOptions


def targets(estimator, y, n: int) -> np.ndarray:
  """[N] labels: column vectors ravelled (with a warning), type checked."""
  if y is None:
    raise ValueError(f'{type(estimator).__name__} requires y to be passed, '
                     'but the target y is None.')
  y = column_or_1d(y, warn=True)
  check_consistent_length(np.empty((n, 0)), y)
  check_classification_targets(y)
  return y


def multilabel_targets(estimator, y, n: int) -> np.ndarray | None:
  """uint8 [N, C] of a multilabel-indicator y (dense or sparse), else
  None (single-label y, for `targets`)."""
  if not is_multilabel_indicator(y):
    return None
  Y = y.toarray() if sp.issparse(y) else np.asarray(y)
  check_consistent_length(np.empty((n, 0)), Y)
  if estimator.class_weight is not None:
    raise ValueError(f'{type(estimator).__name__}: class_weight is for '
                     'single-label y; with a multi-label y (2-D 0/1) pass '
                     'class_weight=None (sample_weight works).')
  estimator._y_dtype = Y.dtype  # predict answers in y's dtype
  return (Y != 0).astype(np.uint8)


_ALL_ZERO = 'Sample weights must contain at least one non-zero number.'


def checked_sample_weight(sample_weight, n: int) -> np.ndarray | None:
  """float64 [N] ``sample_weight`` (a number: the same for all), or None."""
  if sample_weight is None:
    return None
  if isinstance(sample_weight, numbers.Number):
    sample_weight = np.full(n, sample_weight)
  weights = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                        input_name='sample_weight')
  if weights.shape != (n,):
    raise ValueError(f'sample_weight.shape == {weights.shape}, '
                     f'expected ({n},)!')
  if (weights < 0).any():
    raise ValueError('Negative values in data passed to sample_weight.')
  if not weights.any():
    raise ValueError(_ALL_ZERO)
  return weights


def sample_weights(estimator, sample_weight, y_index: np.ndarray,
                   partial: bool = False):
  """float32 [N] sample_weight times class_weight, or None."""
  n = y_index.shape[0]
  weights = checked_sample_weight(sample_weight, n)
  if estimator.class_weight is not None:
    if partial and isinstance(estimator.class_weight, str):
      raise ValueError("class_weight 'balanced' is not supported by "
                       'partial_fit (a batch does not show the class '
                       'frequencies); pass a dict, e.g. from '
                       'sklearn.utils.class_weight.compute_class_weight.')
    per_class = compute_class_weight(
        estimator.class_weight, classes=estimator.classes_,
        y=estimator.classes_[y_index], sample_weight=weights)
    if (np.asarray(per_class) < 0).any():
      raise ValueError(f'class_weight must be >= 0, got '
                       f'{estimator.class_weight!r}.')
    base = np.ones(n) if weights is None else weights
    # A class whose samples all weigh 0 gets an infinite 'balanced' weight.
    weights = np.where(base == 0, 0.0, base * per_class[y_index])
  if weights is None:
    return None
  if not weights.any():
    raise ValueError(_ALL_ZERO)
  return weights.astype(np.float32)


def fit_features(estimator, X, features: FeaturizerOptions,
                 training: TrainOptions, sample_weight=None,
                 standardize: bool = True) -> CsrFeatures:
  """Fits what turns X into training features and returns them [N, F].

  Texts: a `Featurizer` of ``features`` (``featurizer_``). A feature
  matrix: its standardisation (learnt with ``sample_weight``) and step
  factor for the steps ``training`` packs (``scaling_``, see
  `linjax.estimator_scaling`), after scikit-learn's `validate_data`
  (``n_features_in_``). The kind of X is decided here.
  """
  X = _listed(X)
  texts = _as_texts(X)
  for attr in ('n_features_in_', 'feature_names_in_'):
    estimator.__dict__.pop(attr, None)
  if texts is not None:
    estimator.featurizer_ = Featurizer.from_options(features)
    estimator.scaling_ = None
    return estimator.featurizer_.fit_transform(texts)
  estimator.featurizer_ = None
  X = validate_data(estimator, X, accept_sparse=('csr', 'csc'),
                    dtype=(np.float64, np.float32))
  weights = checked_sample_weight(sample_weight, X.shape[0])
  numeric = scaling.fit_scaling(X, weights, standardize)
  x = _csr(scaling.apply(numeric, X))
  estimator.scaling_ = scaling.with_step(numeric, x, _docs_per_step(
      x, training))
  return x


def _docs_per_step(x: CsrFeatures, training: TrainOptions) -> float:
  """About how many rows a training step holds (at least 1)."""
  budget = engine.run_options(x, training).token_budget
  mean = x.nnz / max(x.num_docs, 1)
  return float(max(1.0, min(training.batch_size, budget / max(mean, 1.0))))


def features_of(estimator, X, training: bool = False) -> CsrFeatures:
  """CsrFeatures [N, F] of X, as the fitted estimator reads it.

  A feature matrix is taken as given (the fitted parameters act on raw
  columns), or with ``training`` in the units the model trains in
  (``scaling_``, for `partial_fit`).
  """
  X = _listed(X)
  texts = _as_texts(X)
  name = type(estimator).__name__
  check_is_fitted(estimator)
  if estimator.featurizer_ is not None:
    if texts is None:
      raise ValueError(f'{name} was fitted on texts: X must be texts too '
                       f'(a 1-D sequence of str), got {_kind(X)}.')
    return estimator.featurizer_.transform(texts)
  if texts is not None:
    raise ValueError(
        f'{name} was fitted on a feature matrix of '
        f'{estimator.n_features_in_} columns, not on texts: fit it on texts, '
        'or put a vectorizer (e.g. TfidfVectorizer) before it in a Pipeline.')
  X = validate_data(estimator, X, reset=False, accept_sparse=('csr', 'csc'),
                    dtype=(np.float64, np.float32))
  if training and estimator.scaling_ is not None:
    X = scaling.apply(estimator.scaling_, X)
  return _csr(X)


def is_multilabel_indicator(y) -> bool:
  """Whether y is scikit-learn's multilabel-indicator (2-D, 0/1)."""
  if y is None:
    return False
  try:
    return type_of_target(y) == 'multilabel-indicator'
  except ValueError:   # not a target at all: `targets` says why
    return False


def _listed(X):
  """An iterator (e.g. a generator of texts) as a list; X otherwise."""
  return list(X) if isinstance(X, collections.abc.Iterator) else X


def _as_texts(X) -> list | None:
  """X as a list of str if it is texts (a 1-D sequence of str), else None."""
  if isinstance(X, (str, bytes)):
    raise ValueError('Iterable over raw text documents expected, string '
                     'object received.')
  if sp.issparse(X):
    return None
  if hasattr(X, 'shape') and hasattr(X, 'dtype'):  # numpy, pandas
    if len(X.shape) != 1 or getattr(X.dtype, 'kind', '') not in 'OUT':
      return None
    items = X.tolist()
  elif isinstance(X, (list, tuple)):
    items = X
  else:
    return None
  strings = [isinstance(t, str) for t in items]
  if items and all(strings):
    return list(items)
  if any(strings):
    i = strings.index(False)
    raise ValueError(f'X mixes texts and other values: X[{i}] is '
                     f'{type(items[i]).__name__}; texts must all be str.')
  return None


def _kind(X) -> str:
  shape = getattr(X, 'shape', None)
  return f'{type(X).__name__} of shape {shape}' if shape else type(
      X).__name__


def _csr(X) -> CsrFeatures:
  """A validated numeric matrix (dense or CSR/CSC) as CsrFeatures."""
  if sp.issparse(X):
    X = X.tocsr()
    if not X.has_canonical_format:  # duplicates: sum them, on a copy
      X = X.copy()
      X.sum_duplicates()
  else:
    X = sp.csr_array(X)
  return CsrFeatures(X.indptr.astype(np.int64), X.indices.astype(np.int32),
                     X.data.astype(np.float32), int(X.shape[1]))
