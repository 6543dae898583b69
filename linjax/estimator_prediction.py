"""What a fitted `LinjaxClassifier` answers: scores, labels, probabilities.

Shapes: N rows, F features, C classes.

The scores are ``z = x W + b`` (``params_``, on the raw columns of a
feature matrix). How they become labels and probabilities is the trained
loss's business, read from the table of linjax/core/losses.py when `fit`
ran and kept on the estimator (``loss_``, ``multilabel_``,
``probability_``), so that a pickled estimator predicts without looking
its loss up again:

* one class per document (softmax, hinge, modified_huber, ...): the label
  of the highest score; for two classes `decision_function` is
  ``z[:, 1] - z[:, 0]`` (scikit-learn's convention);
* multi-label (sigmoid, or any multi-hot loss): each label whose score is
  >= 0 (probability >= 0.5 for sigmoid), as `OneVsRestClassifier`;
* probabilities: the loss's probability map (softmax and sigmoid in
  float64 here, others by the table's `host_losses` map). A margin loss
  has none: `predict_proba` and `predict_log_proba` are then absent
  (AttributeError, ``hasattr(clf, 'predict_proba')`` is False), as for
  scikit-learn's ``SGDClassifier(loss='hinge')``; `decision_function`
  works.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from linjax.core import host_losses
from linjax.core.losses import get_loss
from linjax.core.losses import LossNotFound
from linjax.engine.scoring import predict_logits
from linjax.estimator_inputs import features_of


def probability_of(estimator) -> str | None:
  """The probability map predict_proba uses (None: the loss has none).

  Fitted: the trained loss's (``probability_``; older pickles: softmax or
  sigmoid). Unfitted: the ``loss`` parameter's, as scikit-learn's
  SGDClassifier decides from its parameter (None: softmax).
  """
  if hasattr(estimator, 'params_'):
    default = 'sigmoid' if getattr(estimator, 'multilabel_', False) else (
        'softmax')
    return getattr(estimator, 'probability_', default)
  if estimator.loss is None:
    return 'softmax'
  try:
    return get_loss(estimator.loss).probability
  except (LossNotFound, ValueError):
    return 'softmax'   # fit names the bad parameter


def _has_probabilities(estimator) -> bool:
  if probability_of(estimator) is None:
    loss = getattr(estimator, 'loss_', estimator.loss)
    raise AttributeError(
        f'probability estimates are not available for loss={loss!r}: a '
        'margin loss gives scores (decision_function), not probabilities.')
  return True


class LinearPredictions:
  """`LinjaxClassifier`'s prediction methods and scikit-learn attributes."""

  def _multilabel(self) -> bool:
    return getattr(self, 'multilabel_', False)   # older pickles lack it

  def _logits(self, X) -> np.ndarray:
    """float64 [N, C] scores ``x W + b``."""
    x = features_of(self, X)
    return np.asarray(predict_logits(self.params_, x), np.float64)

  def decision_function(self, X) -> np.ndarray:
    """float64 [N, C] scores; for two classes [N], the score of class 1.

    The binary score is ``z[:, 1] - z[:, 0]`` (softmax: the log-odds of
    class 1), positive where ``classes_[1]`` is predicted (scikit-learn's
    convention, as `roc_auc_score` expects). Multi-label: [N, C], each
    label's score (sigmoid: its log-odds).
    """
    z = self._logits(X)
    if z.shape[1] == 2 and not self._multilabel():
      return z[:, 1] - z[:, 0]
    return z

  @available_if(_has_probabilities)
  def predict_proba(self, X) -> np.ndarray:
    """float64 [N, C] probabilities, columns in the order of ``classes_``
    (the loss's map: softmax rows sum to 1; multi-label sigmoid: each
    label's own, rows need not sum to 1)."""
    z = self._logits(X)
    probability = probability_of(self)
    if probability == 'softmax':
      e = np.exp(z - z.max(axis=1, keepdims=True))
      return e / e.sum(axis=1, keepdims=True)
    if probability == 'sigmoid':
      return special.expit(z)
    return np.asarray(host_losses.PROBABILITIES[probability](z), np.float64)

  @available_if(_has_probabilities)
  def predict_log_proba(self, X) -> np.ndarray:
    """float64 [N, C] log-probabilities (softmax: a stable log-softmax;
    sigmoid: each label's log-sigmoid; others: the log of predict_proba)."""
    probability = probability_of(self)
    if probability not in ('softmax', 'sigmoid'):
      with np.errstate(divide='ignore'):
        return np.log(self.predict_proba(X))
    z = self._logits(X)
    if probability == 'sigmoid':
      return -np.logaddexp(0.0, -z)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

  def predict(self, X) -> np.ndarray:
    """[N] labels ``classes_[argmax(z)]`` (for two classes: score > 0);
    multi-label: the [N, C] indicator of score >= 0 (sigmoid: probability
    >= 0.5), in y's dtype, as `OneVsRestClassifier` predicts."""
    z = self._logits(X)  # first: it raises NotFittedError before classes_
    if self._multilabel():
      return (z >= 0).astype(self._y_dtype)
    return self.classes_[np.argmax(z, axis=1)]

  @property
  def coef_(self) -> np.ndarray:
    """float32 [C, F], or [1, F] for two classes (scikit-learn's layout;
    multi-label: always [C, F])."""
    check_is_fitted(self)
    W = self.params_.W
    if W.shape[1] == 2 and not self._multilabel():
      return (W[:, 1] - W[:, 0])[None]
    return W.T

  @property
  def intercept_(self) -> np.ndarray:
    """float32 [C], or [1] for two classes (multi-label: always [C])."""
    check_is_fitted(self)
    b = self.params_.b
    if b.shape[0] == 2 and not self._multilabel():
      return b[1:] - b[:1]
    return b
