"""The what-if page's data: a model without documents, and one text.

Host numpy. Shapes: C classes, F features.

`linjax explore` (linjax/cli/explore.py) renders `model_payload` (or, with
labelled data, `report_data.build_payload`) as its page, and answers each
text typed into it with `explain_text`: the prediction, the
probabilities and every token's exact contribution, as
`report_data.document_table` computes them for the report's documents.
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence

import numpy as np

from linjax.analysis import report_data
from linjax.analysis import report_templates as templates_lib


def model_payload(*, W, b, featurizer, label_names: Sequence[str],
                  threshold: float | None = None,
                  history: Sequence[dict] = (), info: dict | None = None,
                  config: dict | None = None,
                  top_features: int = report_data.ReportOptions().top_features
                  ) -> dict[str, Any]:
  """The payload of a model without labelled documents (the what-if page):
  ``version``, ``kind``, ``labels``, ``info``, ``settings``, ``history``,
  ``templates`` and ``threshold`` as in `report_data.build_payload`."""
  names = [str(n) for n in label_names]
  return dict(
      version=report_data.PAYLOAD_VERSION,
      kind='single' if threshold is None else 'multi', labels=names,
      info=dict(info or {}, created=datetime.datetime.now().isoformat(
          timespec='seconds')),
      settings=report_data.flat_settings(config),
      history=[{k: v for k, v in h.items() if isinstance(v, (int, float))}
               for h in history],
      threshold=threshold,
      templates=templates_lib.class_templates(W, b, featurizer, names,
                                              top_features))


def explain_text(text: str, proba, featurizer, W,
                 threshold: float | None = None,
                 against: int | None = None,
                 probabilities: bool = True) -> dict[str, Any]:
  """One text's prediction and highlights (the what-if page's answer).

  Args:
    text: the document.
    proba: float [C] the model's probabilities of it.
    featurizer: the fitted featuriser; W: [F, C] the weights.
    threshold: a multi-label model's threshold; None: single-label.
    against: a class id: single-label, explain the prediction against it
      (why this class rather than that one); multi-label, that label's
      own score. None: the runner-up, or the top label.
    probabilities: False when ``proba`` are a margin loss's scores.

  Returns:
    dict with ``pred`` (class id; multi-label: the label ids at or above
    the threshold, best first), ``proba`` (C floats), ``target``,
    ``other`` and ``spans`` as in `report_data.document_table`.
  """
  proba = np.asarray(proba, np.float64)[None, :]
  if threshold is None:
    y = proba.argmax(axis=1)
  else:
    y = proba >= threshold
  explained = None
  if against is not None:
    order = np.argsort(-proba[0], kind='stable')
    if threshold is not None:
      explained = ([against], [-1])
    elif against != order[0]:
      explained = ([order[0]], [against])
  table = report_data.document_table([text], y, proba, [0], featurizer, W,
                                     threshold, explained, probabilities)
  return dict(pred=table['pred'][0], proba=np.round(proba[0], 5).tolist(),
              probabilities=probabilities,
              target=table['target'][0], other=table['other'][0],
              spans=table['spans'][0])
