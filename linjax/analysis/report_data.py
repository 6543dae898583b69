"""The numbers of the error-analysis report (report.html), from arrays.

Host numpy, pure functions. Shapes: N test documents, C classes (labels),
F features, M documents embedded in the page.

`build_payload` turns what a run already has (the test texts, their labels
and predicted probabilities, the weights, the featuriser, the per-epoch
history) into one JSON-able dict that linjax/analysis/report_page.py
renders: metrics and the per-class table, the confusion matrix, the
calibration, the class templates, and a bounded sample of documents
(linjax/analysis/report_sampling.py: only the sampled documents' texts are
read) with each token's exact contribution
(linjax/analysis/report_contributions.py). Single-label (int labels [N],
softmax probabilities) and multi-label (multi-hot [N, C], sigmoid
probabilities and a threshold) alike.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Sequence

import numpy as np

from linjax.analysis import metrics as metrics_lib
from linjax.analysis import multilabel_metrics as ml_metrics
from linjax.analysis import report_calibration as calibration_lib
from linjax.analysis import report_contributions as contributions
from linjax.analysis import report_sampling as sampling
from linjax.analysis import report_templates as templates_lib

# The sampling rule (linjax/analysis/report_sampling.py), named here too.
choose_documents = sampling.choose_documents
estimated_bytes = sampling.estimated_bytes
stratified_order = sampling.stratified_order

PAYLOAD_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ReportOptions:
  """How much the report embeds.

  Attributes:
    max_docs: at most this many documents are embedded (0: none).
    error_share: the misclassified documents take up to this share of
      ``max_docs`` (more when there are too few correct ones); the correct
      ones fill the rest.
    max_doc_bytes: the embedded documents' estimated size (text, spans and
      contributions) stays under this; fewer documents are embedded, in the
      same proportions, when long documents would exceed it.
    num_bins: bins of the reliability diagram and the ECE.
    top_features: features listed per class and sign in the templates.
    seed: the sampling seed.
  """
  max_docs: int = 2000
  error_share: float = 0.75
  max_doc_bytes: int = 3_500_000
  num_bins: int = 15
  top_features: int = 12
  seed: int = 0

  def __post_init__(self):
    if self.max_docs < 0:
      raise ValueError(f'max_docs must be >= 0, got {self.max_docs}')
    if not 0.0 <= self.error_share <= 1.0:
      raise ValueError(f'error_share must lie in [0, 1], got '
                       f'{self.error_share}')
    if self.num_bins < 1 or self.top_features < 0 or self.max_doc_bytes < 0:
      raise ValueError('num_bins must be >= 1, top_features and '
                       'max_doc_bytes >= 0')


# Documents. ------------------------------------------------------------------


def _rounded(values, decimals: int = 4) -> list:
  return np.round(np.asarray(values, np.float64), decimals).tolist()


def explained_classes(y_true, proba, threshold: float | None):
  """Which class each document's highlights explain, and against which.

  Single-label (``threshold`` None): the prediction against the true class,
  or against the runner-up when the prediction is right. Multi-label: the
  label of the largest error (a false positive or a missed label, the one
  farthest from the threshold) or, without an error, the top label, against
  nothing (a sigmoid label's own score).

  Returns:
    (target int64 [N], other int64 [N], -1 for none).
  """
  proba = np.asarray(proba, np.float64)
  rows = np.arange(proba.shape[0])
  if threshold is None:
    y_true = np.asarray(y_true, np.int64)
    top2 = np.argsort(-proba, axis=1, kind='stable')[:, :2]
    pred = top2[:, 0]
    runner_up = top2[:, 1] if proba.shape[1] > 1 else top2[:, 0]
    return pred, np.where(pred == y_true, runner_up, y_true)
  Y = np.asarray(y_true) > 0
  predicted = proba >= threshold
  margin = np.where(Y != predicted, np.abs(proba - threshold), -1.0)
  worst = margin.argmax(axis=1)
  target = np.where(margin[rows, worst] >= 0, worst, proba.argmax(axis=1))
  return target.astype(np.int64), np.full(proba.shape[0], -1, np.int64)


def _label_lists(mask: np.ndarray, order: np.ndarray) -> list:
  """Per row, the column ids where ``mask`` holds, in ``order``'s order."""
  return [row_order[row_mask[row_order]].tolist()
          for row_mask, row_order in zip(mask, order)]


def document_table(texts: Sequence[str], y_true, proba, chosen, featurizer,
                   W, threshold: float | None, explained=None,
                   probabilities: bool = True) -> dict:
  """The embedded documents, column by column, with their highlights.

  Args:
    texts: the test texts, indexable by the rows of ``chosen`` (all N, or
      {row: text} of the chosen ones).
    y_true: int [N] or multi-hot [N, C].
    proba: float [N, C].
    chosen: int [M] the documents to embed.
    featurizer: the fitted featuriser (for the documents' feature slots).
    W: [F, C] the weights.
    threshold: multi-label decision threshold; None for single-label.
    explained: (target, other) int [M] to explain instead of
      `explained_classes`' choice.
    probabilities: False when ``proba`` are the scores of a margin loss
      (hinge): ``conf`` is then the margin of the best score over the
      runner-up's and ``loss`` the multiclass hinge loss.

  Returns:
    dict of M-long lists: ``index`` (row in the test split), ``text``,
    ``true``/``pred`` (class id, or lists of label ids, predicted best
    first), ``conf`` (probability of the explained class), ``loss``,
    ``target``/``other`` (`explained_classes`) and ``spans``: per document
    the string ``'start,end,contribution,...'`` over its tokens' spans
    (`report_contributions.encoded_spans`).
  """
  chosen = np.asarray(chosen, np.int64)
  proba = np.asarray(proba, np.float64)[chosen]
  y = np.asarray(y_true)[chosen]
  texts = [texts[i] for i in chosen.tolist()]
  target, other = (explained_classes(y, proba, threshold)
                   if explained is None else
                   (np.asarray(e, np.int64) for e in explained))
  rows = np.arange(chosen.shape[0])
  eps = np.finfo(np.float64).eps
  conf = proba[rows, target]
  if threshold is None and not probabilities:
    true = y.astype(np.int64).tolist()
    top2 = -np.sort(-proba, axis=1)[:, :2]
    conf = top2[:, 0] - top2[:, -1]
    rival = np.where(np.arange(proba.shape[1]) == y[:, None], -np.inf, proba)
    loss = np.maximum(0.0, 1.0 + rival.max(axis=1) - proba[rows, y])
    pred = proba.argmax(axis=1).tolist()
  elif threshold is None:
    true = y.astype(np.int64).tolist()
    pred = proba.argmax(axis=1).tolist()
    loss = -np.log(np.clip(proba[rows, y.astype(np.int64)], eps, 1.0))
  else:
    order = np.argsort(-proba, axis=1, kind='stable')
    true = _label_lists(y > 0, order)
    pred = _label_lists(proba >= threshold, order)
    p = np.clip(proba, eps, 1 - eps)
    loss = -np.where(y > 0, np.log(p), np.log1p(-p)).sum(axis=1)
  slots = contributions.document_slots(featurizer, texts)
  values = contributions.token_contributions(W, slots, target, other)
  spans = contributions.encoded_spans(
      texts, *contributions.merged_spans(slots, values))
  return dict(index=chosen.tolist(), text=texts, true=true, pred=pred,
              conf=_rounded(conf), loss=_rounded(loss),
              target=target.tolist(), other=other.tolist(), spans=spans)


# The whole payload. ----------------------------------------------------------


def _single_label_parts(y_true, proba, names, options,
                        probabilities: bool = True) -> dict:
  y_true = np.asarray(y_true, np.int64)
  report = metrics_lib.classification_report(y_true, proba, names,
                                             probabilities=probabilities)
  calibration = None   # scores of a margin loss: nothing to calibrate
  if probabilities:
    pred = np.asarray(proba).argmax(axis=1)
    confidence = np.asarray(proba).max(axis=1)
    calibration = calibration_lib.reliability(confidence, pred == y_true,
                                              options.num_bins)
  return dict(
      metrics=dict(accuracy=report['accuracy'], macro_f1=report['macro_f1'],
                   macro_precision=report['macro_precision'],
                   macro_recall=report['macro_recall'],
                   log_loss=report['log_loss'],
                   ece=calibration and calibration['ece']),
      per_class=report['per_class'],
      confusion=report['confusion_matrix'], calibration=calibration,
      absent_classes=report['absent_classes'])


def _multi_label_parts(Y, proba, names, threshold, options) -> dict:
  report = ml_metrics.multilabel_report(Y, proba, threshold, (1, 5), names)
  calibration = calibration_lib.reliability(proba, np.asarray(Y) > 0,
                                            options.num_bins)
  metrics = {k: report[k] for k in (
      'micro_f1', 'macro_f1', 'micro_precision', 'micro_recall', 'p_at_1',
      'r_at_1', 'p_at_5', 'r_at_5', 'labels_per_document',
      'predicted_per_document', 'threshold')}
  metrics['ece'] = calibration['ece']
  return dict(metrics=metrics, per_class=report['per_label'],
              confusion=None, calibration=calibration,
              threshold_curve=calibration_lib.threshold_curve(Y, proba))


def flat_settings(config: dict | None) -> dict:
  """``{'section.key': value}`` of a nested config dict (a run's settings)."""
  out = {}

  def walk(prefix, value):
    if isinstance(value, dict):
      for k, v in value.items():
        walk(f'{prefix}.{k}' if prefix else str(k), v)
    else:
      out[prefix] = value if isinstance(value, (int, float, str, bool,
                                                type(None))) else str(value)
  walk('', config or {})
  return out


def build_payload(*, texts: Sequence[str], y_true, proba, W, b, featurizer,
                  label_names: Sequence[str], threshold: float | None = None,
                  history: Sequence[dict] = (), info: dict | None = None,
                  config: dict | None = None,
                  options: ReportOptions = ReportOptions(),
                  templates: list | None = None,
                  probabilities: bool = True) -> dict[str, Any]:
  """Everything the report shows, JSON-able.

  Args:
    texts: the N test texts, as read (the page shows them verbatim): a
      sequence, or an object whose ``take(rows)`` reads the texts of those
      rows only (`report_sampling.texts_at`; at most ``options.max_docs``
      are asked for, once).
    y_true: int [N] class ids, or multi-hot [N, C] (then ``threshold``).
    proba: float [N, C] the model's probabilities of the test documents.
    W: [F, C] weights; b: [C] biases.
    featurizer: the fitted featuriser.
    label_names: the C names.
    threshold: a multi-label model's decision threshold; None: single-label.
    history: the per-epoch records (metrics.jsonl).
    info: free-form facts for the summary (corpus, model, counts, timings).
    config: the run's settings (a nested dict), listed in the summary.
    options: `ReportOptions`.
    templates: `report_templates.class_templates` computed already (a
      run asks for the names before it saves the model); None: computed.
    probabilities: False when ``proba`` are the scores of a margin loss
      (single-label hinge): no log loss or calibration, and documents
      ranked by their score margin (`document_table`).

  Returns:
    A dict: ``version``, ``kind`` ('single' | 'multi'), ``labels``,
    ``info``, ``settings``, ``history``, ``metrics``, ``per_class``,
    ``confusion`` ([C, C] or None), ``calibration``, ``threshold_curve``
    (multi-label), ``templates``, ``docs`` (`document_table`) and
    ``docs_total``/``errors_total`` (N and the misclassified count).
  """
  names = [str(n) for n in label_names]
  proba = np.asarray(proba, np.float64)
  multi = threshold is not None
  if multi:
    parts = _multi_label_parts(np.asarray(y_true) > 0, proba, names,
                               threshold, options)
  else:
    parts = _single_label_parts(np.asarray(y_true, np.int64), proba, names,
                                options, probabilities)
  # Only the chosen documents' texts are read (a streamed run's file, the
  # other processes'): the same documents as with every text in memory.
  chosen, text_of, wrong = sampling.sample(texts, y_true, proba, threshold,
                                           options)
  docs = document_table(text_of, y_true, proba, chosen, featurizer, W,
                        threshold, probabilities=probabilities)
  payload = dict(
      version=PAYLOAD_VERSION, kind='multi' if multi else 'single',
      labels=names, probabilities=probabilities,
      info=dict(info or {}, created=datetime.datetime.now().isoformat(
          timespec='seconds')),
      settings=flat_settings(config),
      history=[{k: v for k, v in h.items() if isinstance(v, (int, float))}
               for h in history],
      threshold_curve=None,
      templates=templates if templates is not None else (
          templates_lib.class_templates(W, b, featurizer, names,
                                        options.top_features)),
      docs=docs, docs_total=int(proba.shape[0]),
      errors_total=int(wrong.sum()),
      errors_embedded=int(wrong[chosen].sum()))
  payload.update(parts)
  return payload

