"""The numbers of the error-analysis report (report.html), from arrays.

Host numpy, pure functions. Shapes: N test documents, C classes (labels),
F features, M documents embedded in the page.

`build_payload` turns what a run already has (the test texts, their labels
and predicted probabilities, the weights, the featuriser, the per-epoch
history) into one JSON-able dict that linjax/analysis/report_page.py
renders: metrics and the per-class table, the confusion matrix, the
calibration, the class templates, and a bounded sample of documents
(`choose_documents`) with each token's exact contribution
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
from linjax.analysis import report_templates as templates_lib

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


# Sampling. -------------------------------------------------------------------


def stratified_order(groups: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
  """A permutation of [N] whose every prefix is stratified by ``groups``.

  Items are shuffled within their group and ranked by ``rank / group size``:
  every group's first item comes before any group's second, and a prefix of
  length m holds about ``m * size / N`` items of each group.

  Args:
    groups: int [N] group ids.
    rng: the random generator.

  Returns:
    int64 [N].
  """
  groups = np.asarray(groups, np.int64)
  num = groups.shape[0]
  if not num:
    return np.zeros(0, np.int64)
  shuffled = rng.permutation(num)
  by_group = shuffled[np.argsort(groups[shuffled], kind='stable')]
  g = groups[by_group]
  first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
  sizes = np.diff(np.r_[first, num])
  rank = np.arange(num) - np.repeat(first, sizes)
  key = rank / np.repeat(sizes, sizes)
  return by_group[np.argsort(key, kind='stable')]


def choose_documents(wrong, error_groups, correct_groups, cost,
                     options: ReportOptions) -> np.ndarray:
  """The documents to embed: misclassified first, then correct ones.

  Args:
    wrong: bool [N] misclassified.
    error_groups: int [N] the stratum of a misclassified document (its
      confusion cell).
    correct_groups: int [N] the stratum of a correct one (its class).
    cost: float [N] each document's estimated size in bytes.
    options: `ReportOptions` (max_docs, error_share, max_doc_bytes, seed).

  Returns:
    int64 [M] sorted document indices: every misclassified document when
    they fit, else a stratified sample of them, and a stratified sample of
    the correct ones; M <= max_docs and their cost <= max_doc_bytes (at
    least one document of each kind when there is one).
  """
  wrong = np.asarray(wrong, bool)
  cost = np.asarray(cost, np.float64)
  rng = np.random.default_rng(options.seed)
  errors = np.flatnonzero(wrong)
  correct = np.flatnonzero(~wrong)
  errors = errors[stratified_order(np.asarray(error_groups)[errors], rng)]
  correct = correct[stratified_order(np.asarray(correct_groups)[correct],
                                     rng)]
  n_err = min(errors.size, max(round(options.error_share * options.max_docs),
                               options.max_docs - correct.size))
  n_cor = min(correct.size, options.max_docs - n_err)
  for _ in range(30):  # shrink both in proportion until the bytes fit
    total = cost[errors[:n_err]].sum() + cost[correct[:n_cor]].sum()
    if total <= options.max_doc_bytes or n_err + n_cor <= 2:
      break
    scale = 0.95 * options.max_doc_bytes / total
    n_err = max(min(1, n_err), int(n_err * scale))
    n_cor = max(min(1, n_cor), int(n_cor * scale))
  return np.sort(np.concatenate([errors[:n_err], correct[:n_cor]]))


def estimated_bytes(texts: Sequence[str]) -> np.ndarray:
  """float64 [N]: a document's size in the page, 4 bytes per character
  (its text, and each token's span and contribution: 3.1 to 3.7 measured
  on the shared corpora) and 60 per document."""
  return 4.0 * np.fromiter(map(len, texts), np.float64, len(texts)) + 60.0


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
    texts: the N test texts.
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
    texts: the N test texts, as read (the page shows them verbatim).
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
    Y = np.asarray(y_true) > 0
    parts = _multi_label_parts(Y, proba, names, threshold, options)
    predicted = proba >= threshold
    wrong = (Y != predicted).any(axis=1)
    top = proba.argmax(axis=1)
    error_groups = correct_groups = top
  else:
    y = np.asarray(y_true, np.int64)
    parts = _single_label_parts(y, proba, names, options, probabilities)
    pred = proba.argmax(axis=1)
    wrong = pred != y
    error_groups, correct_groups = y * len(names) + pred, y
  chosen = choose_documents(wrong, error_groups, correct_groups,
                            estimated_bytes(texts), options)
  if not options.max_docs:
    chosen = chosen[:0]
  docs = document_table(texts, y_true, proba, chosen, featurizer, W,
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

