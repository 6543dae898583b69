"""Checks a training run makes on itself: gradients, divergence, labels.

* `quick_gradcheck`: the library's three-way gradient check
  (`linjax.check_grad`: jax.grad, the hand-derived gradient and central
  finite differences of every coordinate, in float64) on a few real
  training documents and only their features (linjax/cli/gradcheck.py).
* `run_gradcheck`: the check every training run makes, three-way too, on
  the same real documents, but as ONE compiled program at XLA's
  optimisation level 0: jax.grad and the hand-derived gradient compared on
  every coordinate, and finite differences on every bias and ``per_class``
  random weights of each class. `GradcheckInBackground` runs it in a daemon
  thread while the runner featurises the other splits and trains (JAX's
  float64 mode is thread-local: the training is untouched). Measured on
  the demo corpus, 2 cores shared with other work: this check alone takes
  0.50 s of CPU, `quick_gradcheck` 1.88 s; a whole demo run takes 0.8-1.4
  s more CPU with the check than without (3.6-4.3 s before), and never
  waited for it.
* `DivergenceGuard`: the loss of the zero-initialised model (log C for
  softmax, C log 2 for sigmoid, 1 for hinge: the trained loss's own, from
  its table entry); an epoch whose mean training loss exceeds
  ``EPOCH_FACTOR`` times that stops the run, and a trained model whose
  training loss exceeds it itself (worse than the zero model, e.g. than
  predicting uniform probabilities) is reported loudly.
  Measured with the default config on the shared corpora:
  the largest epoch mean was 2.8 log C at the default learning rate, 11.5
  at 4x and 50 at 16x (all recovered, the trained models at most 0.31 log
  C at up to 4x); at ``learning_rate=1e30`` it is about 1e28 log C.

The label checks (rare, absent or wrong-looking classes) are in
linjax/cli/label_checks.py.
"""

from __future__ import annotations

import functools
import math
import threading

from absl import logging
import numpy as np

from linjax.engine import training

EPOCH_FACTOR = 100.0   # stop when an epoch's mean loss > this x log C


def _small_problem(x, y, num_docs: int, max_features: int):
  """The first ``num_docs`` documents (fewer if they use more than
  ``max_features`` distinct features), their features renumbered 0..K-1:
  (padded ids int32 [n, L], weights [n, L], labels int32 [n] (or a
  multi-hot [n, C]), K)."""
  from linjax.text.csr import CsrFeatures  # pylint: disable=g-import-not-at-top
  n = min(num_docs, x.num_docs)
  while n > 1 and np.unique(x.ids[:x.indptr[n]]).shape[0] > max_features:
    n //= 2
  sub = x.take(np.arange(n))
  used, local = np.unique(sub.ids, return_inverse=True)
  sub = CsrFeatures(sub.indptr, local.astype(np.int32), sub.weights,
                    max(1, used.shape[0]))
  ids, weights = sub.to_padded()
  return (np.asarray(ids, np.int32), np.asarray(weights),
          np.asarray(y[:n]).astype(np.int32), sub.num_features)


def _random_params(num_features: int, num_classes: int, seed: int):
  """Small float64 parameters (numpy: no PRNG program to compile)."""
  import linjax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  return linjax.Params(
      W=0.1 * rng.standard_normal((num_features, num_classes)),
      b=0.1 * rng.standard_normal(num_classes))


def quick_gradcheck(x, y, num_classes: int, l2: float, num_docs: int = 32,
                    max_features: int = 2000, seed: int = 0,
                    table_rows: int = 0, loss='softmax'):
  """`linjax.check_grad` on a few documents and only their features.

  Renumbering the documents' features 0..K-1 makes the finite differences
  cost O(K C) loss evaluations, not O(F C).

  Args:
    x: CsrFeatures of the training split.
    y: int [N] labels.
    num_classes: C.
    l2: the objective's L2 strength.
    num_docs: documents used at most.
    max_features: distinct features used at most.
    seed: seed of the small random parameters.
    table_rows: rows of the lecture's per-coordinate slope table (0: none).
    loss: the trained loss (a name of the table or its `Loss`).

  Returns:
    A `linjax.GradCheckReport`.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import linjax  # pylint: disable=g-import-not-at-top
  ids, weights, labels, k = _small_problem(x, y, num_docs, max_features)
  return linjax.check_grad(
      _random_params(k, num_classes, seed),
      linjax.SparseFeatures(jnp.asarray(ids), jnp.asarray(weights)),
      jnp.asarray(labels), l2=l2, table_rows=table_rows, loss=loss)


# XLA:CPU compiles this small float64 program in half the time at level 0.
# Finite differences evaluated side by side: at most this many parameter
# values in flight (2^18 float64: 2 MB per copy of the perturbed params).
_SLOPE_BATCH_VALUES = 2**18
_GRADCHECK_COMPILER_OPTIONS = {'xla_backend_optimization_level': 0,
                               'xla_llvm_disable_expensive_passes': True}


def run_gradcheck(x, y, num_classes: int, l2: float, num_docs: int = 32,
                  max_features: int = 2000, seed: int = 0, per_class: int = 8,
                  tolerance: float = 1e-6, eps: float = 1e-5,
                  manual_fn=None, loss='softmax'):
  """The three-way check of a training run, in one compiled program.

  On the documents and parameters of `quick_gradcheck`, in float64:
  ``jax.grad(objective)`` of the trained loss against the hand-derived
  gradient on every coordinate (where the loss's table entry has one, the
  gradient the training step uses), and against central finite differences
  on every bias and on ``per_class`` random weights of each class (every
  loss). Errors are normwise per leaf
  (``max|a - b| / max|jax.grad|``), as in `linjax.check_grad`. The finite
  differences run in equal batches of coordinates (`_SLOPE_BATCH_VALUES`):
  69 tags (621 coordinates of 30 k parameters) took ~1 GB side by side,
  ~0.1 GB in batches (debian_tags runner peak RSS 1.49 -> 0.52 GB).

  Args:
    x, y, num_classes, l2, num_docs, max_features, seed: as for
      `quick_gradcheck`.
    per_class: weights of each class checked by finite differences.
    tolerance: largest relative error that passes.
    eps: finite-difference step.
    manual_fn: ``(params, x, y, l2) -> Params``, the hand-written gradient
      to check (default `linjax.manual_grad` where the loss has a
      hand-derived gradient; none otherwise: the report has no 'manual').
    loss: the trained loss, a name of the table of linjax/core/losses.py
      or its `Loss` with settings bound (y int [N] or multi-hot [N, C] as
      its label kind says).

  Returns:
    A `linjax.GradCheckReport` (``seconds``: compile and run).
  """
  import time  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from jax.flatten_util import ravel_pytree  # pylint: disable=g-import-not-at-top
  import linjax  # pylint: disable=g-import-not-at-top
  from linjax.core import gradients  # pylint: disable=g-import-not-at-top
  from linjax.core import losses  # pylint: disable=g-import-not-at-top
  ids, weights, labels, k = _small_problem(x, y, num_docs, max_features)
  params = _random_params(k, num_classes, seed)
  rng = np.random.default_rng(seed + 1)
  rows = rng.integers(0, k, (num_classes, per_class))
  # Flat indices into ravel_pytree(Params) (W row-major, then b):
  # W[r, c] is r * C + c, b[c] is K * C + c.
  picked = np.unique(np.concatenate([
      (rows * num_classes + np.arange(num_classes)[:, None]).ravel(),
      k * num_classes + np.arange(num_classes)]))
  spec = losses.get_loss(loss)
  hand = manual_fn or (functools.partial(gradients.manual_grad, loss=spec)
                       if spec.hand_grad is not None else None)
  num_params = k * num_classes + num_classes
  batch = int(max(1, min(picked.shape[0],
                         _SLOPE_BATCH_VALUES // num_params)))
  num_picked = picked.shape[0]   # padded to whole batches, cut off below
  picked = np.concatenate([picked, np.full(-num_picked % batch, picked[-1])])

  def program(params, ids, weights, labels, picked):
    features = linjax.SparseFeatures(ids, weights)
    fn = lambda p: losses.objective(p, features, labels, l2, spec)
    flat, unravel = ravel_pytree(params)

    def slope(j):
      step = eps * jax.nn.one_hot(j, flat.shape[0], dtype=flat.dtype)
      return (fn(unravel(flat + step)) - fn(unravel(flat - step))) / (2 * eps)
    # Each slope evaluates the objective at two full copies of the
    # parameters: equal batches of them bound the memory (all 621
    # coordinates of 69 tags at once took ~1 GB).
    slopes = jax.lax.map(jax.vmap(slope), picked.reshape(-1, batch))
    manual = None if hand is None else hand(params, features, labels, l2)
    return jax.grad(fn)(params), manual, slopes.reshape(-1)

  with jax.enable_x64(True):
    start = time.perf_counter()
    compiled = jax.jit(program).lower(params, ids, weights, labels,
                                      picked).compile(
                                          _GRADCHECK_COMPILER_OPTIONS)
    compiled_at = time.perf_counter()
    auto, manual, slopes = jax.device_get(
        compiled(params, ids, weights, labels, picked))
    picked, slopes = picked[:num_picked], slopes[:num_picked]
    seconds = dict(compile=compiled_at - start,
                   run=time.perf_counter() - compiled_at)
  flat_auto = np.concatenate([np.ravel(auto.W), np.ravel(auto.b)])
  numerical = {'W': picked < k * num_classes}
  numerical['b'] = ~numerical['W']
  methods = ('numerical',) if manual is None else ('manual', 'numerical')
  abs_err = {m: {} for m in methods}
  rel_err = {m: {} for m in methods}
  for leaf in ('W', 'b'):
    scale = max(float(np.max(np.abs(getattr(auto, leaf)))),
                np.finfo(np.float64).tiny)
    diffs = {'numerical': np.abs(slopes[numerical[leaf]] -
                                 flat_auto[picked[numerical[leaf]]])}
    if manual is not None:
      diffs['manual'] = np.abs(getattr(manual, leaf) - getattr(auto, leaf))
    for method, diff in diffs.items():
      abs_err[method][leaf] = float(np.max(diff)) if diff.size else 0.0
      rel_err[method][leaf] = abs_err[method][leaf] / scale
  passed = all(e <= tolerance for m in rel_err.values() for e in m.values())
  return linjax.GradCheckReport(
      max_abs_error=abs_err, max_rel_error=rel_err, tolerance=tolerance,
      passed=bool(passed), seconds=seconds,
      num_params=int(num_params))


class GradcheckInBackground:
  """`run_gradcheck` in a daemon thread; `result` waits for it.

  A daemon thread, so an interrupted run exits without waiting for it.
  """

  def __init__(self, *args, **kwargs):
    self._report = self._error = None
    self.span = None   # (start, end) in seconds since the process started
    self._thread = threading.Thread(target=self._run, args=args,
                                    kwargs=kwargs, name='linjax-gradcheck',
                                    daemon=True)
    self._thread.start()

  def _run(self, *args, **kwargs):
    from linjax.cli import run_timeline  # pylint: disable=g-import-not-at-top
    start = run_timeline.now()
    try:
      self._report = run_gradcheck(*args, **kwargs)
    except Exception as e:  # pylint: disable=broad-except
      self._error = e
    finally:
      self.span = (start, run_timeline.now())

  def result(self):
    """The `GradCheckReport` (re-raises the thread's error)."""
    self._thread.join()
    if self._error is not None:
      raise self._error
    return self._report


class LossExploded(training.TrainingDiverged):
  """An epoch's mean training loss exceeded EPOCH_FACTOR x log C."""

  def __init__(self, message: str):  # pylint: disable=super-init-not-called
    RuntimeError.__init__(self, message)  # pylint: disable=non-parent-init-called


class DivergenceGuard:
  """Compares training losses with the loss of the zero-initialised model.

  Args:
    num_classes: C.
    learning_rate: the run's, named in the advice.
    loss: the trained loss (a name of the table of linjax/core/losses.py or
      its `Loss`, settings bound): the initial loss is its mean at all-zero
      scores: log C for softmax (uniform probabilities), C log 2 for
      sigmoid (every label's probability 1/2), 1 for the multiclass hinge.
    labels: the training labels the initial loss is averaged over (None:
      one document of class 0, or with no label for a multi-label loss;
      the built-in losses' value does not depend on them).
  """

  def __init__(self, num_classes: int, learning_rate: float,
               loss='softmax', labels=None):
    from linjax.core import losses  # pylint: disable=g-import-not-at-top
    spec = losses.get_loss(loss)
    if labels is None:
      labels = (np.zeros((1, num_classes), np.uint8) if spec.multi_label
                else np.zeros(1, np.int32))
    labels = np.asarray(labels)
    zero = np.zeros((labels.shape[0], num_classes), np.float32)
    self.initial = float(np.mean(spec.host_loss(zero, labels)))
    self.initial_name = "the zero model's loss"
    for name, value in (('log C', math.log(num_classes)),
                        ('C log 2', num_classes * math.log(2))):
      if math.isclose(self.initial, value, rel_tol=1e-6):
        self.initial, self.initial_name = value, name
        break
    self.learning_rate = learning_rate

  def _advice(self) -> str:
    lr = self.learning_rate
    return (f'Try a smaller learning rate than --config.optimizer.'
            f'learning_rate={lr:g} (e.g. {lr / 4:g}), or set '
            f'--config.optimizer.clip_norm.')

  def check_epoch(self, epoch: int, train_loss: float) -> None:
    """Raises `LossExploded` (a `TrainingDiverged`) if ``train_loss`` is EPOCH_FACTOR times
    the initial loss or more."""
    if train_loss > EPOCH_FACTOR * self.initial:
      raise LossExploded(
          f'Training diverged at epoch {epoch}: the mean training loss '
          f'{train_loss:.3g} is {train_loss / self.initial:.3g} x the '
          f'initial loss {self.initial_name} = {self.initial:.3g} (the '
          f'limit is {EPOCH_FACTOR:g} x). {self._advice()}')

  def check_model(self, train_loss: float) -> bool:
    """Warns loudly if the trained model's training loss exceeds the
    initial loss (e.g. log C); returns whether it does."""
    if train_loss <= self.initial:
      return False
    logging.warning(
        '!!! the trained model is worse than the zero model (e.g. than '
        'uniform probabilities): its training loss %.3g exceeds the initial '
        'loss %s '
        '= %.3g. Its predictions are not to be trusted. %s', train_loss,
        self.initial_name, self.initial, self._advice())
    return True
