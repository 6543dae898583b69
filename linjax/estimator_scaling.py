"""The estimator's numeric input: standardised columns, a step from the data.

Shapes: N rows, F columns, C classes.

A feature matrix reaches `LinjaxClassifier` in whatever units its columns
have (wine: proline ~750, hue ~1). Plain SGD at one learning rate cannot fit
such columns: the step that is stable for the large ones leaves the small
ones where they started (unscaled wine: 0.60 accuracy, against 0.96 for
`LogisticRegression`). So `fit` learns from the training matrix, and keeps
for later `partial_fit` calls as the featuriser of texts is kept:

* **Standardised columns** (dense X, ``standardize=True``): each column
  centred and scaled to unit variance, with ``sample_weight`` as
  `sklearn.preprocessing.StandardScaler` weighs it; a constant column keeps
  scale 1. The model trains in those units and is then folded back onto the
  raw columns (`to_raw`), so ``params_``, ``coef_`` and ``intercept_`` act
  on X as given: ``decision_function(X) = X @ coef_.T + intercept_``. The L2
  penalty therefore applies to the standardised weights (as glmnet's
  ``standardize=TRUE``). A sparse X is left as it is: centring would make it
  dense, and it is usually a vectoriser's output, whose rare columns
  standardisation would blow up.
* **A step from the data** (`with_step`): the learning rate is multiplied
  by ``1 / (B lambda + mean ||x||^2)``, from the largest eigenvalue lambda
  of the rows' second moment and their mean squared norm, B rows a step: 1
  for rows of unit norm that do not overlap (the rows the default learning
  rate was chosen for are near: linjax's text features have lambda
  0.03-0.06), 0.5-0.7 for `TfidfVectorizer`'s rows of the shared corpora,
  1/97 for standardised iris (lambda 2.9, 4 columns, B 32): a step of the
  batch-mean loss is stable below ``4 / (lambda + mean ||x||^2 / B)``.
  SAG and SAGA take their step 1/L from the rows the same way (from the
  largest squared norm; here the batch's curvature).
* **A penalty for standardised columns** (`default_l2`, ``l2='auto'``).

Texts do not pass through here: the featuriser's rows already have unit
norm (``normalize=True``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from linjax.core.model import Params
from linjax.text.csr import CsrFeatures


EXACT = 512   # columns up to which the eigenvalue is computed exactly


@dataclasses.dataclass(frozen=True)
class NumericScaling:
  """What `fit_scaling` learnt from a training matrix.

  Attributes:
    mean: float64 [F], subtracted from each column (None: nothing).
    scale: float64 [F] > 0, each centred column divided by it (None: 1).
    step: the factor of the learning rate, 1 / mean squared row norm.
  """

  mean: np.ndarray | None
  scale: np.ndarray | None
  step: float

  @property
  def identity(self) -> bool:
    """Whether the columns are used as they are."""
    return self.mean is None and self.scale is None


def fit_scaling(X, sample_weight=None, standardize: bool = True
                ) -> NumericScaling:
  """Learns the standardisation and the step factor of a training matrix.

  Args:
    X: float [N, F], a numpy array or a scipy.sparse CSR matrix/array.
    sample_weight: optional float [N] >= 0 (not all 0), the weights of the
      columns' mean and variance.
    standardize: standardise a dense X (a sparse X never is).

  Returns:
    NumericScaling.
  """
  mean = scale = None
  if standardize and not sp.issparse(X):
    X = np.asarray(X, np.float64)
    mean = np.average(X, axis=0, weights=sample_weight)
    var = np.average((X - mean) ** 2, axis=0, weights=sample_weight)
    # StandardScaler's rule: a variance within rounding error of 0 is 0.
    n, eps = X.shape[0], np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.where(constant, 1.0, np.sqrt(var))
  return NumericScaling(mean, scale, 1.0)


def with_step(scaling: NumericScaling, x: CsrFeatures,
              docs_per_step: float) -> NumericScaling:
  """``scaling`` with the step factor of its training features ``x``.

  A step of the batch-mean loss over B rows is stable below ``4 / lambda``,
  lambda the largest eigenvalue of the batch's second moment ``X_b^T X_b /
  B`` (the softmax's curvature is at most 1/2), about ``lambda_X + mean
  ||x||^2 / B`` with ``lambda_X`` that of the whole ``X^T X / N``. Texts'
  rows (unit norm, nearly orthogonal: lambda_X ~ 0.03) put it near ``1 / B``
  and the default learning rate was chosen there, so the factor is
  ``1 / (B lambda_X + mean ||x||^2)``: about 1 for such rows, 1 / 97 for
  standardised iris (lambda_X 2.9, 4 columns).

  Args:
    scaling: from `fit_scaling`.
    x: CsrFeatures [N, F], the training rows in the training units.
    docs_per_step: B, the rows of an average step.
  """
  X = _scipy(x)
  squared = _row_norms_squared(X)
  squared = squared[squared > 0]
  if not squared.size:
    return scaling
  lam = _largest_eigenvalue(X)
  step = 1.0 / (float(docs_per_step) * lam + float(squared.mean()))
  return dataclasses.replace(scaling, step=step)


def default_l2(scaling: NumericScaling | None, num_rows: int) -> float:
  """The estimator's ``l2='auto'`` for a fit on ``num_rows`` rows.

  Standardised columns: ``1 / (2 N)``, LogisticRegression's default C=1
  (the penalty ``||W||^2 / 2`` on the summed loss: a standard normal prior
  on each standardised weight). It mattered on small sets: over
  make_classification's seeds 1-10 (100 rows, 5-fold) the mean accuracy
  was 0.7 points below LogisticRegression's with it, 2.7 without
  (BUILD_NOTES). Otherwise (texts, sparse or unstandardised columns) 0:
  the validated text default; a weight's scale is unknown there.
  """
  if scaling is None or scaling.mean is None or num_rows <= 0:
    return 0.0
  return 1.0 / (2.0 * num_rows)


def apply(scaling: NumericScaling, X):
  """X in the training units: ``(X - mean) / scale`` (float64 if changed)."""
  if scaling.identity:
    return X
  X = np.asarray(X, np.float64)
  if scaling.mean is not None:
    X = X - scaling.mean
  return X / scaling.scale


def to_raw(scaling: NumericScaling, params: Params) -> Params:
  """Params on standardised columns -> the same model on raw columns.

  ``z = ((x - m) / s) W + b = x (W / s) + (b - (m / s) W)``, taken in
  float64 and stored in float32.
  """
  if scaling.identity:
    return params
  W = np.asarray(params.W, np.float64) / scaling.scale[:, None]
  b = np.asarray(params.b, np.float64)
  if scaling.mean is not None:
    b = b - scaling.mean @ W
  return Params(W.astype(np.float32), b.astype(np.float32))


def to_scaled(scaling: NumericScaling, params: Params) -> Params:
  """The inverse of `to_raw`: where `partial_fit` continues training."""
  if scaling.identity:
    return params
  W = np.asarray(params.W, np.float64)
  b = np.asarray(params.b, np.float64)
  if scaling.mean is not None:
    b = b + scaling.mean @ W
  return Params((W * scaling.scale[:, None]).astype(np.float32),
                b.astype(np.float32))


def _scipy(x: CsrFeatures) -> sp.csr_array:
  return sp.csr_array((x.weights.astype(np.float64), x.ids, x.indptr),
                      shape=(x.num_docs, x.num_features))


def _largest_eigenvalue(X, iterations: int = 50) -> float:
  """The largest eigenvalue of ``X^T X / N``: exact for up to `EXACT`
  columns, else by power iteration (seeded; a lower bound, within a few
  per cent for text features after 50 rounds)."""
  if X.shape[1] <= EXACT:
    gram = (X.T @ X).toarray() if sp.issparse(X) else X.T @ X
    return float(np.linalg.eigvalsh(np.asarray(gram) / X.shape[0])[-1])
  v = np.random.default_rng(0).normal(size=X.shape[1])
  value = 0.0
  for _ in range(iterations):
    v /= np.linalg.norm(v)
    w = X.T @ (X @ v) / X.shape[0]
    value = float(np.linalg.norm(w))
    if value == 0.0:
      break
    v = w
  return value


def _row_norms_squared(X) -> np.ndarray:
  """float64 [N] squared L2 norms of the rows of a dense or sparse X."""
  if sp.issparse(X):
    X = sp.csr_array(X)
    return np.asarray(X.multiply(X).sum(axis=1), np.float64).ravel()
  X = np.asarray(X, np.float64)
  return np.einsum('ij,ij->i', X, X)
