"""Refitting on train + validation once validation has chosen.

The runner carves a validation split (``data.val_fraction``) from the
training data to watch each epoch and, with ``train.patience``, to stop
early. Whatever validation chooses, the documents it held out are then lost
to the model: the saved model would learn from 90% of the labelled data.
As scikit-learn's ``refit`` and fastText's autotune do, the runner trains
the saved model once more, on train + validation, with what validation
chose (``data.refit``, on by default):

* the number of passes: the best epoch under early stopping
  (``train.patience`` > 0), else the passes the first fit ran
  (``train.epochs``, or fewer by ``train.max_steps``);
* every other option as given, and the first fit's slot budget T, so that
  the compiled program is the same one (no second compile);
* the featuriser fitted on the training split alone (the validation texts
  are featurised by it like any new text; refitting it would mean
  featurising everything again);
* no checkpoints: an interrupted refit is redone after the first fit
  resumes from its own.

What results.json reports stays honest: ``val_accuracy`` and ``val_loss``
(and the per-epoch curves of metrics.jsonl) are those of the first fit,
measured on documents it never saw: the validation estimate of the
procedure that trained the saved model. ``train_accuracy`` and the test
metrics are the saved (refit) model's. ``refit`` records what the second
pass did.

Not refit: runs without a validation split, multi-label runs (their
threshold is tuned on the first fit's validation probabilities), and
out-of-core runs (the training split lives on disk; the second pass would
double the longest phase of a run too large for memory): a streamed run
equals the in-memory run with ``data.refit=False``; and runs on several
processes (each holds its part of each split, so the joined documents
would come in another order than one process's, and the model of N
processes would no longer be the model of one).
"""

from __future__ import annotations

import dataclasses

import numpy as np


def applies(config, options, has_validation: bool,
            num_processes: int = 1) -> bool:
  """Whether the run refits on train + validation (see module docstring)."""
  return (bool(config.data.get('refit', True)) and has_validation and
          options.training.loss == 'softmax' and num_processes == 1)


def options_for(training, fit):
  """The `TrainOptions` of the second pass after ``fit`` (a `FitResult`).

  The chosen number of passes, no early stopping, no max_steps rule (the
  passes are chosen), and the first fit's slot budget (``docs_per_step``
  off: T is given), so that the same compiled program runs.
  """
  passes = fit.best_epoch if training.patience > 0 else fit.epochs_run
  return dataclasses.replace(
      training, epochs=max(1, int(passes)), patience=0, max_steps=0,
      docs_per_step=0, token_budget=int(fit.token_budget or
                                        training.token_budget))


def joined(train_x, train_y, val_x, val_y):
  """(features, labels) of train then validation, one split."""
  from linjax.text import csr  # pylint: disable=g-import-not-at-top
  return (csr.concatenate([train_x, val_x]),
          np.concatenate([np.asarray(train_y), np.asarray(val_y)]))


def split_views(x, n: int):
  """(rows [0, n), rows [n, N)) of CsrFeatures ``x``, sharing its ids and
  weights (only the second part's row offsets are new)."""
  from linjax.text import csr  # pylint: disable=g-import-not-at-top
  cut = int(x.indptr[n])
  return (csr.CsrFeatures(x.indptr[:n + 1], x.ids[:cut], x.weights[:cut],
                          x.num_features),
          csr.CsrFeatures(x.indptr[n:] - cut, x.ids[cut:], x.weights[cut:],
                          x.num_features))
