"""A loaded model and its predictions: `SavedModel`, what `load` returns.

Separate from linjax/saved_model.py, which writes, reads and verifies the
files on disk: this module only turns raw texts into probabilities, labels
and label sets with a model already in memory, and knows nothing of the
format.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from linjax.core import losses

DEFAULT_THRESHOLD = 0.5   # a multi-label model saved without its own


@dataclasses.dataclass
class SavedModel:
  """A loaded model: what `predict`-style callers need.

  params: `linjax.Params` of float32 numpy arrays, W [F, C] and b [C] (a
    compact model's rows expanded, dequantised).
  featurizer: the fitted `linjax.text.Featurizer`.
  label_map: `linjax.data.LabelMap` with C names.
  config: the training config as a plain dict.
  meta: the whole manifest (versions, shapes, checksums, digest, extra).
  loss: the name of the loss that trained it, in the table of losses
    (linjax/core/losses.py): 'softmax' (one class per document), 'sigmoid'
    (multi-label), 'hinge', ... or a user's 'MODULE:NAME'. `loss_entry` is
    its `Loss`: its label kind says whether the model is multi-label, its
    probability map how scores become probabilities.
  """

  params: Any
  featurizer: Any
  label_map: Any
  config: dict
  meta: dict
  loss: str = 'softmax'

  @property
  def loss_entry(self) -> losses.Loss:
    """The `losses.Loss` of `loss` (its table entry)."""
    return losses.get_loss(self.loss)

  @property
  def multi_label(self) -> bool:
    """Whether the model gives each text a set of labels (a multi-label
    loss such as sigmoid) rather than one."""
    return self.loss_entry.multi_label

  @property
  def precision(self) -> str:
    """How W was stored: float32 | float16 | int8 (float32 before v3)."""
    return self.meta.get('weights', {}).get('precision', 'float32')

  def predict_proba(self, texts) -> np.ndarray:
    """float32 [N, C] class probabilities of raw ``texts`` (N strings).

    The probability map of the model's loss: softmax rows sum to 1; with the
    sigmoid loss each column is that label's own probability.

    Raises:
      ValueError: the loss has no probabilities (a margin loss, e.g. hinge:
        use `decision_function` or `predict`).
    """
    from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
    return np.asarray(scoring.predict_proba(
        self.params, self.featurizer.transform(texts), loss=self.loss))

  def decision_function(self, texts) -> np.ndarray:
    """float32 [N, C] scores ``x W + b`` of raw ``texts`` (any loss)."""
    from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
    return np.asarray(scoring.predict_logits(
        self.params, self.featurizer.transform(texts)))

  @property
  def threshold(self) -> float | None:
    """A multi-label model's threshold: the one saved with it (the runner
    tunes it on validation, ``extra.threshold``) or 0.5; None for a model
    of one label per text."""
    if not self.multi_label:
      return None
    value = ((self.meta or {}).get('extra') or {}).get('threshold')
    return DEFAULT_THRESHOLD if value is None else float(value)

  def predict(self, texts) -> list:
    """The model's prediction for each of the N ``texts``.

    One label per text (softmax, hinge, ...): the best-scored label name (a
    str). Multi-label (sigmoid):
    the document's label set, `predict_sets` with the saved threshold, a
    tuple of names (maybe empty), best first; what a tag model predicts,
    as scikit-learn's one-vs-rest ``predict`` gives label sets, never one
    forced label. For the single best tag use ``predict_sets(texts,
    threshold=0, top_k=1)``.
    """
    if self.multi_label:
      return self.predict_sets(texts)
    scores = (self.predict_proba(texts) if self.loss_entry.has_probabilities
              else self.decision_function(texts))
    return self.label_map.decode(np.argmax(scores, axis=1))

  def predict_sets(self, texts, threshold: float | None = None,
                   top_k: int | None = None) -> list[tuple[str, ...]]:
    """Each text's labels: those with probability >= threshold, best first.

    Only for multi-label (sigmoid) models: softmax probabilities compete
    for one label, so a threshold on them is not a label set (`predict`).

    Args:
      texts: N raw strings.
      threshold: in [0, 1]; None: the model's (`threshold`).
      top_k: at most this many labels per text (None: all that pass).

    Returns:
      N tuples of label names; empty where no label reaches the threshold.
    """
    from linjax.analysis import multilabel_metrics  # pylint: disable=g-import-not-at-top
    if not self.multi_label:
      raise ValueError("predict_sets needs a multi-label model (loss "
                       f"'sigmoid'); this one was trained with {self.loss!r}:"
                       ' use predict (one label per text) or predict_proba.')
    if threshold is None:
      threshold = self.threshold
    if isinstance(threshold, bool) or not (
        isinstance(threshold, (int, float, np.floating)) and
        0.0 <= threshold <= 1.0):
      raise ValueError(f'threshold must be a number in [0, 1] or None (the '
                       f'model\'s {self.threshold:g}), got {threshold!r}.')
    names = self.label_map.to_list()
    ranked = multilabel_metrics.ranked_labels(self.predict_proba(texts),
                                              float(threshold), top_k)
    return [tuple(names[i] for i in ids) for ids in ranked]
