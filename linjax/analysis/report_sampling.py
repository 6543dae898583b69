"""Which test documents report.html embeds, without holding every text.

Host numpy, pure functions. Shapes: N test documents, C classes, M <=
``max_docs`` documents embedded.

The rule (one rule for every way a run holds its texts):

1. `document_strata`: which documents are misclassified, and their strata
   (a misclassified document's confusion cell, a correct one's class; for
   multi-label, the top label).
2. `candidates`: the misclassified ones in a stratified order (every
   stratum's first before any stratum's second, `stratified_order`), then
   the correct ones likewise; the first ``n_err`` and ``n_cor`` of each
   (misclassified up to ``error_share`` of ``max_docs``, more when too few
   are correct; ``n_err + n_cor <= max_docs``). This needs the labels and
   predictions only.
3. `within_budget`: both prefixes shortened in proportion until the
   candidates' estimated size (`estimated_bytes` of their texts) fits
   ``max_doc_bytes``. It reads the sizes of the candidates only, since a
   prefix only ever shrinks.

So the texts of at most ``max_docs`` candidates are all a report needs:
a run that streams its test split from disk, or whose test documents lie
on several processes, fetches those (`texts_at` on an object with
``take(rows)``) and embeds exactly the documents an in-memory run of the
same labels and predictions embeds. `choose_documents` is steps 2 and 3
with every document's size known.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class Candidates(NamedTuple):
  """The documents a report may embed, before the byte budget.

  Attributes:
    errors: int64 [n_err] misclassified rows, in stratified order.
    correct: int64 [n_cor] correct rows, in stratified order.
  """
  errors: np.ndarray
  correct: np.ndarray

  def rows(self) -> np.ndarray:
    """int64 [<= max_docs]: the candidates' rows, sorted."""
    return np.sort(np.concatenate([self.errors, self.correct]))


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


def document_strata(y_true, proba, threshold: float | None):
  """Misclassified documents and the strata the sample is drawn by.

  Args:
    y_true: int [N] class ids, or multi-hot [N, C] (then ``threshold``).
    proba: float [N, C] probabilities (or a margin loss's scores).
    threshold: a multi-label model's threshold; None: single-label.

  Returns:
    (wrong bool [N], error_groups int64 [N], correct_groups int64 [N]):
    single-label: the confusion cell ``true * C + pred`` and the true
    class; multi-label (wrong: any label set differs): the top label, both.
  """
  proba = np.asarray(proba)
  top = proba.argmax(axis=1).astype(np.int64) if proba.ndim == 2 else (
      np.zeros(0, np.int64))
  if threshold is not None:
    wrong = ((np.asarray(y_true) > 0) != (proba >= threshold)).any(axis=1)
    return wrong, top, top
  y = np.asarray(y_true, np.int64)
  return top != y, y * proba.shape[1] + top, y


def candidates(wrong, error_groups, correct_groups, max_docs: int,
               error_share: float, seed: int) -> Candidates:
  """Step 2 of the module docstring: at most ``max_docs`` candidates.

  Args:
    wrong: bool [N] misclassified.
    error_groups: int [N] the stratum of a misclassified document.
    correct_groups: int [N] the stratum of a correct one.
    max_docs: documents embedded at most.
    error_share: the misclassified take up to this share of ``max_docs``
      (more when there are too few correct ones).
    seed: the sampling seed.

  Returns:
    `Candidates` (``n_err + n_cor <= max_docs``).
  """
  wrong = np.asarray(wrong, bool)
  rng = np.random.default_rng(seed)
  errors = np.flatnonzero(wrong)
  correct = np.flatnonzero(~wrong)
  errors = errors[stratified_order(np.asarray(error_groups)[errors], rng)]
  correct = correct[stratified_order(np.asarray(correct_groups)[correct],
                                     rng)]
  n_err = min(errors.size, max(round(error_share * max_docs),
                               max_docs - correct.size))
  n_cor = min(correct.size, max_docs - n_err)
  return Candidates(errors[:max(n_err, 0)], correct[:max(n_cor, 0)])


def within_budget(chosen: Candidates, error_cost, correct_cost,
                  max_doc_bytes: float) -> np.ndarray:
  """Step 3: the candidates' prefixes shortened until they fit.

  Args:
    chosen: `Candidates`.
    error_cost, correct_cost: float [n_err], [n_cor] the estimated bytes of
      ``chosen.errors`` and ``chosen.correct``, in their order.
    max_doc_bytes: the documents' estimated size stays under this (at least
      one document of each kind when there is one).

  Returns:
    int64 [M] sorted rows: prefixes of both, shrunk in proportion.
  """
  error_cost = np.asarray(error_cost, np.float64)
  correct_cost = np.asarray(correct_cost, np.float64)
  n_err, n_cor = chosen.errors.size, chosen.correct.size
  for _ in range(30):  # shrink both in proportion until the bytes fit
    total = error_cost[:n_err].sum() + correct_cost[:n_cor].sum()
    if total <= max_doc_bytes or n_err + n_cor <= 2:
      break
    scale = 0.95 * max_doc_bytes / total
    n_err = max(min(1, n_err), int(n_err * scale))
    n_cor = max(min(1, n_cor), int(n_cor * scale))
  return np.sort(np.concatenate([chosen.errors[:n_err],
                                 chosen.correct[:n_cor]]))


def choose_documents(wrong, error_groups, correct_groups, cost,
                     options) -> np.ndarray:
  """The documents to embed: misclassified first, then correct ones.

  Args:
    wrong: bool [N] misclassified.
    error_groups: int [N] the stratum of a misclassified document (its
      confusion cell).
    correct_groups: int [N] the stratum of a correct one (its class).
    cost: float [N] each document's estimated size in bytes.
    options: `report_data.ReportOptions` (max_docs, error_share,
      max_doc_bytes, seed).

  Returns:
    int64 [M] sorted document indices: every misclassified document when
    they fit, else a stratified sample of them, and a stratified sample of
    the correct ones; M <= max_docs and their cost <= max_doc_bytes (at
    least one document of each kind when there is one).
  """
  chosen = candidates(wrong, error_groups, correct_groups, options.max_docs,
                      options.error_share, options.seed)
  cost = np.asarray(cost, np.float64)
  return within_budget(chosen, cost[chosen.errors], cost[chosen.correct],
                       options.max_doc_bytes)


def estimated_bytes(texts: Sequence[str]) -> np.ndarray:
  """float64 [N]: a document's size in the page, 4 bytes per character
  (its text, and each token's span and contribution: 3.1 to 3.7 measured
  on the shared corpora) and 60 per document."""
  return 4.0 * np.fromiter(map(len, texts), np.float64, len(texts)) + 60.0


def texts_at(texts, rows) -> list[str]:
  """The texts of ``rows`` (int [M], sorted) of ``texts``: a sequence of
  every text, or an object whose ``take(rows)`` reads those on demand (a
  streamed file, other processes; linjax/cli/report_texts.py)."""
  rows = np.asarray(rows, np.int64)
  take = getattr(texts, 'take', None)
  if take is not None:
    got = list(take(rows))
    if len(got) != rows.size:
      raise ValueError(f'asked for the texts of {rows.size} documents, got '
                       f'{len(got)}')
    return got
  return [texts[i] for i in rows.tolist()]


def sample(texts, y_true, proba, threshold: float | None,
           options) -> tuple[np.ndarray, dict, np.ndarray]:
  """Steps 1-3 with the texts of the candidates only.

  Args:
    texts: the N test texts (`texts_at`: a sequence, or ``take(rows)``).
    y_true, proba, threshold: as `document_strata`.
    options: `report_data.ReportOptions`.

  Returns:
    (chosen int64 [M] sorted rows, {row: text} of the chosen rows, wrong
    bool [N]).
  """
  wrong, error_groups, correct_groups = document_strata(y_true, proba,
                                                        threshold)
  chosen = candidates(wrong, error_groups, correct_groups, options.max_docs,
                      options.error_share, options.seed)
  rows = chosen.rows()
  text_of = dict(zip(rows.tolist(), texts_at(texts, rows)))
  cost = {row: float(c) for row, c in zip(
      text_of, estimated_bytes(list(text_of.values())))}
  kept = within_budget(chosen, [cost[r] for r in chosen.errors.tolist()],
                       [cost[r] for r in chosen.correct.tolist()],
                       options.max_doc_bytes)
  return kept, {r: text_of[r] for r in kept.tolist()}, wrong
