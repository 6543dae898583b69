"""Scoring, prediction and evaluation of trained Params on a CSR corpus.

Shapes: N documents, F features, C classes. Numpy Params (what `training.fit`
returns and `saved_model.load` gives) are scored on the host with numpy; JAX
arrays on an accelerator on their device, in chunks padded to power-of-two
shapes so that few programs are compiled. `training.fit` and
`hyper_sweep.sweep` score the validation split straight from a training
state (W = scale * V) with `logits_scaled`; on the CPU that state is host
memory, scored with numpy too, and `loss_and_accuracy` is numpy: a cold
run's first validation compiled ~1.1-1.4 s CPU of small programs (fortunes,
manpages), as much as the training program itself."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import host_losses
from linjax.core import losses
from linjax.core import model
from linjax.text.csr import CsrFeatures
from linjax.core.features import gather_padded_rows

Params = model.Params


def _bucket(n: int) -> int:
  return 1 << max(int(n) - 1, 0).bit_length()


@jax.jit
def _chunk_logits(W, scale, b, ids, weights):
  rows = gather_padded_rows(W, ids)                           # [B, L, C]
  return jnp.einsum('nl,nlc->nc', weights, rows) * scale + b


def _chunks(x: CsrFeatures, batch_size: int):
  """Yields (start, ids [B, L], weights [B, L]) padded to static shapes."""
  lengths = x.row_lengths()
  width = _bucket(int(lengths.max()) if lengths.size else 1)
  for start in range(0, x.num_docs, batch_size):
    part = x.take(np.arange(start, min(start + batch_size, x.num_docs)))
    ids, weights = part.to_padded(width)
    rows = min(_bucket(part.num_docs), batch_size)
    ids = np.pad(ids, ((0, rows - part.num_docs), (0, 0)))
    weights = np.pad(weights, ((0, rows - part.num_docs), (0, 0)))
    yield start, ids, weights


def logits_scaled(W, scale, b, x: CsrFeatures, batch_size: int) -> np.ndarray:
  """float32 [N, C] scores ``scale * (x V) + b`` on W's device, in chunks.

  The engine scores its validation split straight from a training state
  (W = scale * V, linjax/engine/step.py) without materialising W. A W in
  host memory (numpy, or a JAX array on the CPU: a view, no copy) is scored
  with numpy (`_host_logits`), with no program to compile and no padding to
  the longest document (fortunes' test split: 0.17 -> 0.03 s CPU a call).
  """
  if on_host(W):
    out = _host_logits(np.asarray(W), None, x, batch_size)
    scale = np.float32(np.asarray(scale))
    if scale != 1:
      out *= scale
    out += np.asarray(b, np.float32)
    return out
  out = np.zeros((x.num_docs, np.shape(b)[0]), np.float32)
  for start, ids, weights in _chunks(x, batch_size):
    z = np.asarray(_chunk_logits(W, scale, b, ids, weights))
    out[start:start + batch_size] = z[:min(batch_size, x.num_docs - start)]
  return out


# Entries scored per block on the host: the block's [entries, C] rows of W
# are its largest temporary (2**16 x 21 classes: 5.5 MB), whatever the
# documents' lengths (4,096 fortunes took 16 MB twice over).
HOST_BLOCK_ENTRIES = 1 << 16


def on_host(W) -> bool:
  """Whether ``W`` is in host memory: numpy, or a JAX array on the CPU."""
  if isinstance(W, np.ndarray):
    return True
  try:
    return all(d.platform == 'cpu' for d in W.devices())
  except AttributeError:
    return False


def _host_logits(W: np.ndarray, b: np.ndarray | None, x: CsrFeatures,
                 batch_size: int) -> np.ndarray:
  """Scores ``b + x W`` on the host with numpy (``b`` None: 0).

  No device copy of W, nothing to compile. Blocks of at most ``batch_size``
  documents and `HOST_BLOCK_ENTRIES` entries (or one longer document); each
  document's sum is the same whatever the blocks.
  """
  out = np.zeros((x.num_docs, W.shape[1]), np.float32)
  if not isinstance(x, CsrFeatures):
    # A corpus on disk (linjax.text.csr_store.CsrStore, the out-of-core
    # runner's validation split): its consecutive chunks, read in order.
    for first, part in x.chunks():
      out[first:first + part.num_docs] = _host_logits(W, b, part, batch_size)
    return out
  if b is not None:
    out[:] = b
  indptr = x.indptr
  start = 0
  while start < x.num_docs:
    lo = indptr[start]
    stop = int(np.searchsorted(indptr, lo + HOST_BLOCK_ENTRIES, 'right')) - 1
    stop = min(max(stop, start + 1), start + batch_size, x.num_docs)
    hi = indptr[stop]
    contrib = W[x.ids[lo:hi]]                                   # [nnz, C]
    contrib *= x.weights[lo:hi, None]
    lengths = np.diff(indptr[start:stop + 1])
    rows = np.flatnonzero(lengths)
    if rows.size:
      # reduceat over non-empty rows only (an empty row would repeat a value).
      out[start + rows] += np.add.reduceat(
          contrib, indptr[start + rows] - lo, axis=0)
    start = stop
  return out


def predict_logits(params: Params, x: CsrFeatures,
                   batch_size: int = 4096) -> np.ndarray:
  """float32 [N, C] scores ``x W + b`` of a CsrFeatures corpus, in chunks.

  Computed where the parameters live: numpy Params (what `fit` returns and
  `saved_model.load` gives) are scored on the host, without copying W to a
  device or compiling anything; JAX arrays are scored on their device.
  """
  model.check_params(params)
  if x.num_features != np.shape(params.W)[0]:
    raise ValueError(f'predict: x has {x.num_features} features but W has '
                     f'{np.shape(params.W)[0]} rows.')
  if isinstance(params.W, np.ndarray) and isinstance(params.b, np.ndarray):
    return _host_logits(params.W.astype(np.float32, copy=False),
                        params.b.astype(np.float32, copy=False), x,
                        batch_size)
  return logits_scaled(jnp.asarray(params.W), jnp.float32(1.0),
                        jnp.asarray(params.b), x, batch_size)


def predict_proba(params: Params, x: CsrFeatures, batch_size: int = 4096,
                  loss='softmax') -> np.ndarray:
  """float32 [N, C] probabilities: the probability map of ``loss`` (its
  entry in the table of linjax/core/losses.py) applied to ``x W + b``.

  'softmax': of the classes (rows sum to 1); 'sigmoid' (multi-label): of
  each label on its own, ``sigmoid(x W + b)``.

  Raises:
    ValueError: the loss has no probability map (a margin loss, e.g. hinge).
  """
  spec = losses.get_loss(loss)
  if not spec.has_probabilities:
    spec.proba(None)   # raises, naming the loss, before any scoring
  return spec.proba(predict_logits(params, x, batch_size))


# numpy twins of the table's functions (linjax/core/host_losses.py).
sigmoid = host_losses.sigmoid
softmax_nll = host_losses.softmax_cross_entropy
sigmoid_nll = host_losses.sigmoid_cross_entropy


def loss_and_accuracy(z: np.ndarray, y: np.ndarray, loss='softmax') -> dict:
  """dict(loss, accuracy) of scores z [N, C] against labels y.

  ``loss`` (a name of the table, linjax/core/losses.py, or its `Loss` with
  settings bound, e.g. label smoothing): the mean of its per-example loss,
  in numpy where the table has a twin (nothing to compile). Accuracy: with
  one class per document (y int [N]), the fraction whose top score is y;
  multi-label (y multi-hot [N, C]), P@1 as fastText's ``test`` computes
  it: the fraction of the documents with a label whose top-scored label is
  one of theirs (``counted`` of them).
  """
  spec = losses.get_loss(loss)
  y = np.asarray(y)
  z = np.asarray(z, np.float32)
  n = z.shape[0]
  mean = float(spec.host_loss(z, y).mean()) if n else float('nan')
  if spec.multi_label:
    labelled = y.any(axis=1)
    top = (y[np.arange(n), z.argmax(-1)] > 0)[labelled] if n else labelled
    return dict(loss=mean, accuracy=float(top.mean()) if top.size else 0.0,
                counted=int(top.size))
  return dict(loss=mean,
              accuracy=float((z.argmax(-1) == y).mean()) if n else 0.0)


def over_processes(metrics: dict, num_docs: int) -> dict:
  """dict(loss, accuracy) over every process's `loss_and_accuracy` of its
  ``num_docs`` documents: the loss weighted by documents, the accuracy by
  the documents it counts (multi-label: those with a label); float64 sums
  in process order, so every process gets the same numbers. A process
  with no document adds nothing."""
  from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
  n = float(num_docs)
  counted = float(metrics.get('counted', n)) if n else 0.0
  total = distributed.all_sum([metrics['loss'] * n if n else 0.0,
                               metrics['accuracy'] * counted, n, counted])
  return dict(loss=float(total[0] / max(total[2], 1)),
              accuracy=float(total[1] / max(total[3], 1)))


def evaluate(params: Params, x: CsrFeatures, y, loss='softmax') -> dict:
  """dict(loss=mean of ``loss``, accuracy) on (x, y); see
  `loss_and_accuracy`."""
  return loss_and_accuracy(predict_logits(params, x), y, loss)
