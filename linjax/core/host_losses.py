"""The loss table's numpy twins: host scoring with nothing to compile.

Shapes: N documents, C classes. Validation after every epoch and
prediction of a saved model run on the host; a JAX function there would
compile small programs (a cold run's first validation took ~1.1-1.4 s CPU
of them on fortunes and manpages). So the built-in losses of
linjax/core/losses.py carry a numpy twin of their per-example function
(``Loss.host``; tests/test_losses.py checks each against the JAX one) and
their probability map is one of `PROBABILITIES`. A loss without a twin (a
user's) is evaluated with its JAX function.
"""

from __future__ import annotations

import numpy as np


def softmax(z) -> np.ndarray:
  """float32 [N, C] ``softmax(z)`` along the last axis (max subtracted)."""
  z = np.asarray(z, np.float32)
  e = np.exp(z - z.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z) -> np.ndarray:
  """float32 ``1 / (1 + exp(-z))``, elementwise, without overflow warnings."""
  z = np.asarray(z, np.float32)
  e = np.exp(-np.abs(z))
  return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def modified_huber_proba(z) -> np.ndarray:
  """float32 [N, C] as scikit-learn's ``SGDClassifier(loss='modified_huber')
  .predict_proba``: each class's ``(clip(z, -1, 1) + 1) / 2``, normalised
  over the classes (uniform where all are 0)."""
  p = (np.clip(np.asarray(z, np.float32), -1.0, 1.0) + 1.0) / 2.0
  total = p.sum(axis=-1, keepdims=True)
  zero = total == 0
  p = np.where(zero, 1.0, p)
  return (p / np.where(zero, p.shape[-1], total)).astype(np.float32)


PROBABILITIES = {'softmax': softmax, 'sigmoid': sigmoid,
                 'modified_huber': modified_huber_proba}


def softmax_cross_entropy(z, y, label_smoothing: float = 0.0) -> np.ndarray:
  """float32 [N]: `losses.softmax_cross_entropy` in numpy.

  ``-sum_k t_k log softmax(z)_k`` with targets ``t = (1 - a) onehot(y) +
  a / C`` (a = label_smoothing); stable for any finite scores; a label
  outside [0, C) gives NaN.
  """
  z = np.asarray(z, np.float32)
  y = np.asarray(y)
  num_classes = z.shape[-1]
  shifted = z - z.max(axis=-1, keepdims=True)
  log_norm = np.log(np.exp(shifted).sum(axis=-1))
  picked = np.take_along_axis(
      shifted, np.clip(y, 0, num_classes - 1)[:, None], axis=-1)[:, 0]
  nll = log_norm - picked
  if label_smoothing:
    a = np.float32(label_smoothing)
    uniform = log_norm - shifted.mean(axis=-1)   # -mean_k log p_k
    nll = (1 - a) * nll + a * uniform
  valid = (y >= 0) & (y < num_classes)
  return np.where(valid, nll, np.float32(np.nan)).astype(np.float32)


def sigmoid_cross_entropy(z, Y) -> np.ndarray:
  """float32 [N] summed binary cross-entropy in numpy
  (`losses.sigmoid_nll_from_logits`): ``max(z, 0) - Y z + log1p(e^-|z|)``."""
  z = np.asarray(z, np.float32)
  Y = np.asarray(Y, np.float32)
  bce = np.maximum(z, 0) - Y * z + np.log1p(np.exp(-np.abs(z)))
  return bce.sum(axis=-1)
