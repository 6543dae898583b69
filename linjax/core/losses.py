"""The losses: their per-example functions and the ONE table of them.

Shapes: N examples, C classes. Every function is pure and works under
`jax.jit`, `jax.grad` and `jax.vmap`.

A loss is a per-example function in optax's convention, ``loss(logits
[..., C], labels) -> [...]``, with three facts about it, kept together in a
`Loss` (the table, `_BUILT_IN`, is at the end of this module):

* its label kind: `CLASS` (int labels [...], one class per document) or
  `MULTI_HOT` (labels [..., C] in {0, 1}: a document has any number of
  labels, multi-label data);
* its probability map (`host_losses.PROBABILITIES`): 'softmax', 'sigmoid',
  ..., or None for a margin loss, whose scores are no probabilities
  (``predict_proba`` is then refused, as scikit-learn refuses it for
  ``SGDClassifier(loss='hinge')``);
* optionally a gradient with respect to the logits derived by hand
  (`manual_grad` and `check_grad` compare autodiff with it) and a numpy twin
  (host scoring, linjax/core/host_losses.py).

Options, the saved model, the estimator, the engine (which differentiates
the table's function with `jax.vjp`), validation and scoring all read this
table through `get_loss`. Built in:

* ``softmax`` (CLASS): `softmax_loss`, the mean of ``-log softmax(z_i)[y_i]``;
  with ``train.label_smoothing`` = a, against the targets ``(1 - a)
  onehot(y) + a / C`` (`softmax_cross_entropy`).
* ``sigmoid`` (MULTI_HOT, a one-vs-rest binary logistic regression per
  label, fastText's ``-loss ova``): `sigmoid_loss`, the mean over documents
  of the sum over labels of the binary cross-entropy of ``sigmoid(z_ic)``
  against ``Y_ic``. A document may have several labels or none.
* ``hinge`` (CLASS, no probabilities): `multiclass_hinge`, Crammer and
  Singer's multiclass SVM loss (scikit-learn's ``SGDClassifier(loss=
  'hinge')`` is one-vs-rest instead).
* ``modified_huber`` (CLASS): `modified_huber`, scikit-learn's, one-vs-rest
  as ``SGDClassifier(loss='modified_huber')``, with its probabilities.

A loss of your own: `register_loss` (then its name works wherever a loss
name does), or the function itself, or ``MODULE:NAME`` naming it in an
importable module (linjax/core/named_objects.py), which is how the runner
(``--config.train.loss=mymod:myloss``) and a saved model find it.

`objective(params, x, y, l2, loss=...)` adds the L2 penalty to any of them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from linjax.core import host_losses
from linjax.core import model
from linjax.core import named_objects
# The entry of the table, its label kinds and label checks (re-exported:
# `losses.Loss`, `losses.check_labels`, ... are this module's public names).
from linjax.core.loss_entry import CLASS
from linjax.core.loss_entry import check_labels
from linjax.core.loss_entry import check_multi_hot
from linjax.core.loss_entry import LABEL_KINDS
from linjax.core.loss_entry import Loss
from linjax.core.loss_entry import LossNotFound
from linjax.core.loss_entry import MULTI_HOT
from linjax.core.named_objects import NameNotFound


def log_softmax(z: jax.Array) -> jax.Array:
  """``z - logsumexp(z)`` along the last axis.

  Subtracting the maximum first keeps every exponent <= 0, so any finite
  scores (e.g. +-1e4) give finite log-probabilities and gradients.

  Args:
    z: float [..., C] scores.

  Returns:
    float [..., C] log-probabilities.
  """
  shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
  return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=-1, keepdims=True))


def softmax(z: jax.Array) -> jax.Array:
  """Probabilities along the last axis (float [..., C], rows sum to 1)."""
  shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
  e = jnp.exp(shifted)
  return e / jnp.sum(e, axis=-1, keepdims=True)


# -- softmax ------------------------------------------------------------------


def nll_from_logits(z: jax.Array, y: jax.Array) -> jax.Array:
  """``-log softmax(z)[y]`` for scores z [..., C] and int labels y [...].

  A label outside [0, C) gives NaN (not a silent 0), so a bad label inside
  jit surfaces through the divergence check.
  """
  num_classes = z.shape[-1]
  logp = log_softmax(z)
  picked = jnp.take_along_axis(
      logp, jnp.clip(y, 0, num_classes - 1)[..., None], axis=-1)[..., 0]
  valid = (y >= 0) & (y < num_classes)
  return jnp.where(valid, -picked, jnp.nan)


def softmax_cross_entropy(z: jax.Array, y: jax.Array,
                          label_smoothing: float = 0.0) -> jax.Array:
  """The softmax loss of scores z [..., C] and int labels y [...]: float [...].

  ``-sum_k t_k log softmax(z)_k`` with targets ``t = (1 - a) onehot(y) +
  a / C`` (a = ``label_smoothing``, `optax.smooth_labels`): with a = 0
  (the default) `nll_from_logits`, ``-log p_y``; with a > 0 a document
  also pays ``a`` times the mean over classes of ``-log p_k``, so no score
  is pushed to infinity. A label outside [0, C) gives NaN.
  """
  if not label_smoothing:
    return nll_from_logits(z, y)
  a = label_smoothing
  uniform = -jnp.mean(log_softmax(z), axis=-1)
  return (1.0 - a) * nll_from_logits(z, y) + a * uniform


def softmax_score_grad(z: jax.Array, y: jax.Array,
                       label_smoothing: float = 0.0):
  """(`softmax_cross_entropy`, its gradient w.r.t. z derived by hand).

  ``d(-log p_y)/dz = p - onehot(y)``: ``-1 + p_y`` on the target, ``p_k``
  elsewhere (the lecture's form); with label smoothing ``p - t``, the
  smoothed targets t.

  Returns:
    (float [...], float [..., C]).
  """
  num_classes = z.shape[-1]
  logp = log_softmax(z)
  onehot = y[..., None] == jnp.arange(num_classes, dtype=y.dtype)
  valid = (y >= 0) & (y < num_classes)  # a bad label gives NaN
  nll = jnp.where(valid, -jnp.sum(jnp.where(onehot, logp, 0.0), -1), jnp.nan)
  if not label_smoothing:
    return nll, jnp.exp(logp) - onehot
  a = label_smoothing
  value = (1.0 - a) * nll - a * jnp.mean(logp, axis=-1)
  return value, jnp.exp(logp) - ((1.0 - a) * onehot + a / num_classes)


def example_loss(params: model.Params, x: model.Features,
                 y: jax.Array) -> jax.Array:
  """Loss of ONE example: x dense [F] or SparseFeatures ([L], [L]), y int []."""
  return nll_from_logits(model.example_logits(params, x), y)


per_example_loss = jax.vmap(example_loss, in_axes=(None, 0, 0))
per_example_loss.__doc__ = """float [N]: `example_loss` vmapped over a batch."""


def softmax_loss(params: model.Params, x: model.Features,
                 y: jax.Array) -> jax.Array:
  """Mean over examples of ``-log p(y_i | x_i)``.

  Args:
    params: Params with W [F, C], b [C].
    x: dense float [N, F] or SparseFeatures ([N, L], [N, L]).
    y: int [N] class ids in [0, C).

  Returns:
    float scalar.
  """
  z = model.logits(params, x)
  check_labels(y, z.shape[0], z.shape[1])
  return jnp.mean(nll_from_logits(z, y))


# -- sigmoid ------------------------------------------------------------------


def binary_cross_entropy(z: jax.Array, Y: jax.Array) -> jax.Array:
  """``-(Y log sigmoid(z) + (1 - Y) log sigmoid(-z))``, elementwise.

  Written with `jax.nn.log_sigmoid` (``-softplus(-z)``), so any finite score
  (e.g. +-1e4) gives a finite loss and the gradient ``sigmoid(z) - Y``.

  Args:
    z: float [..., C] scores.
    Y: [..., C] targets in {0, 1} (any numeric dtype).

  Returns:
    float [..., C].
  """
  Y = jnp.asarray(Y, z.dtype)
  return -(Y * jax.nn.log_sigmoid(z) + (1.0 - Y) * jax.nn.log_sigmoid(-z))


def sigmoid_nll_from_logits(z: jax.Array, Y: jax.Array) -> jax.Array:
  """Per-example multi-label loss: float [...], the sum over the C labels."""
  return jnp.sum(binary_cross_entropy(z, Y), axis=-1)


def sigmoid_nll_and_score_grad(z: jax.Array, Y: jax.Array):
  """`sigmoid_nll_from_logits` and its gradient w.r.t. z, by hand.

  ``BCE = max(z, 0) - Y z + log1p(e)`` and ``sigmoid(z) = 1 / (1 + e)``
  (z >= 0) or ``e / (1 + e)`` (z < 0), with ``e = exp(-|z|)`` in (0, 1]:
  stable for any finite score, one exp and one log1p.

  Args:
    z: float [..., C] scores.
    Y: [..., C] targets in {0, 1} (any numeric dtype).

  Returns:
    (NLL float [...], the sum over labels; dNLL/dz = sigmoid(z) - Y,
    float [..., C]).
  """
  Y = jnp.asarray(Y, z.dtype)
  e = jnp.exp(-jnp.abs(z))
  nll = jnp.sum(jnp.maximum(z, 0.0) - Y * z + jnp.log1p(e), axis=-1)
  p = jnp.where(z >= 0, 1.0, e) / (1.0 + e)
  return nll, p - Y


def sigmoid_loss(params: model.Params, x: model.Features,
                 Y: jax.Array) -> jax.Array:
  """Mean over examples of the sum over labels of the binary cross-entropy.

  Each label c is its own binary logistic regression with probability
  ``sigmoid(x_i W[:, c] + b[c])``; its gradient w.r.t. the scores is
  ``sigmoid(z) - Y`` (see `gradients.manual_grad`).

  Args:
    params: Params with W [F, C], b [C].
    x: dense float [N, F] or SparseFeatures ([N, L], [N, L]).
    Y: multi-hot [N, C] in {0, 1}: ``Y[i, c] = 1`` if example i has label c.

  Returns:
    float scalar.
  """
  z = model.logits(params, x)
  check_multi_hot(Y, z.shape[0], z.shape[1])
  return jnp.mean(sigmoid_nll_from_logits(z, Y))


# -- multiclass hinge ---------------------------------------------------------


def multiclass_hinge(z: jax.Array, y: jax.Array) -> jax.Array:
  """Crammer-Singer hinge: ``max_k (z_k + [k != y]) - z_y``, float [...].

  0 once the true class's score leads every other by a margin of 1, else
  the worst violation (`optax.losses.multiclass_hinge_loss`; scikit-learn's
  ``LinearSVC(multi_class='crammer_singer')``). Written as ``max(0, 1 +
  max_{k != y} z_k - z_y)``, which is never below 0 in floating point
  (optax's form can give -3e-8). A margin loss: its scores are no
  probabilities. A label outside [0, C) gives NaN.
  """
  num_classes = z.shape[-1]
  target = y[..., None] == jnp.arange(num_classes)
  rival = jnp.max(jnp.where(target, -jnp.inf, z), axis=-1)
  loss = jnp.maximum(1.0 + rival - jnp.sum(jnp.where(target, z, 0.0), -1),
                     0.0)
  return jnp.where((y >= 0) & (y < num_classes), loss, jnp.nan)


# -- modified Huber -----------------------------------------------------------


def modified_huber(z: jax.Array, y: jax.Array) -> jax.Array:
  """scikit-learn's modified Huber loss, one-vs-rest: float [...].

  Each class k is its own binary problem with target ``s_k = +1`` for the
  true class and -1 for the others, as ``SGDClassifier(loss=
  'modified_huber')`` trains one classifier per class; with the margin
  ``m = s_k z_k``, ``h(m) = max(0, 1 - m)^2`` for ``m >= -1`` and ``-4 m``
  below (quadratic near the margin, linear for gross errors). The sum over
  classes: W's columns are the per-class classifiers, each with its own
  loss. Probabilities as scikit-learn's (`host_losses.modified_huber_proba`).
  A label outside [0, C) gives NaN.
  """
  num_classes = z.shape[-1]
  margin = (2.0 * jax.nn.one_hot(y, num_classes, dtype=z.dtype) - 1.0) * z
  h = jnp.where(margin >= -1.0, jnp.square(jnp.maximum(1.0 - margin, 0.0)),
                -4.0 * margin)
  return jnp.where((y >= 0) & (y < num_classes), jnp.sum(h, axis=-1),
                   jnp.nan)


# -- the table ----------------------------------------------------------------


_BUILT_IN = (
    Loss('softmax', softmax_cross_entropy, CLASS, 'softmax',
         options=('label_smoothing',), hand_grad=softmax_score_grad,
         host=host_losses.softmax_cross_entropy),
    Loss('sigmoid', sigmoid_nll_from_logits, MULTI_HOT, 'sigmoid',
         hand_grad=sigmoid_nll_and_score_grad,
         host=host_losses.sigmoid_cross_entropy),
    Loss('hinge', multiclass_hinge, CLASS, None),
    Loss('modified_huber', modified_huber, CLASS, 'modified_huber'),
)
BUILT_IN_NAMES = tuple(loss.name for loss in _BUILT_IN)
_TABLE = {loss.name: loss for loss in _BUILT_IN}


def loss_names() -> tuple[str, ...]:
  """The names in the table: the built-in losses, then registered ones."""
  return tuple(_TABLE)


def register_loss(name: str, fn: Callable | None = None, *,
                  label_kind: str = CLASS, probability: str | None = None,
                  options: tuple = (), hand_grad: Callable | None = None):
  """Adds a loss of your own to the table under ``name``.

  ``fn(logits [..., C], labels) -> [...]`` in optax's convention (e.g. built
  from `optax.losses`); afterwards ``name`` works wherever a loss name does
  (``TrainOptions(loss=name)``, ``LinjaxClassifier(loss=name)``, the runner
  once the module that registers it is imported). Registering a name again
  replaces it; a built-in name cannot be replaced. Used as a decorator when
  ``fn`` is omitted::

    @linjax.register_loss('poly1', probability='softmax')
    def poly1(logits, labels): ...

  Args:
    name: the table's key (not a built-in's).
    fn: the per-example function.
    label_kind: CLASS (int labels [N]) or MULTI_HOT ([N, C] in {0, 1}).
    probability: 'softmax', 'sigmoid', 'modified_huber' or None (a margin
      loss: predict_proba is refused).
    options: keyword options of ``fn`` set from ``train.X`` fields.
    hand_grad: its gradient w.r.t. the logits, derived by hand, for
      `check_grad` (optional).

  Returns:
    ``fn`` (or the decorator).
  """
  if fn is None:
    return lambda f: register_loss(name, f, label_kind=label_kind,
                                   probability=probability, options=options,
                                   hand_grad=hand_grad)
  if name in BUILT_IN_NAMES:
    raise ValueError(f'register_loss: {name!r} is a built-in loss; choose '
                     'another name.')
  _TABLE[name] = Loss(name, fn, label_kind, probability, tuple(options),
                      hand_grad=hand_grad)
  return fn


def _from_function(fn: Callable, name: str) -> Loss:
  """The Loss of a bare function: its registered facts, or the defaults."""
  for loss in _TABLE.values():
    if loss.per_example is fn:
      return dataclasses.replace(loss, name=name)
  return Loss(name, fn)


def get_loss(loss) -> Loss:
  """The table's `Loss` for a name, a ``MODULE:NAME``, a function or a Loss.

  A ``MODULE:NAME`` reference imports MODULE and takes its attribute NAME:
  a `Loss`, or a function (with the facts `register_loss` gave it there, or
  label kind CLASS and no probability map); the result is named by the
  reference, so a model trained with it finds it again. A function not in
  the table gets the defaults and is registered under its ``MODULE:NAME``
  (or its own name when that does not import back to it).

  Raises:
    LossNotFound: one line naming the loss and what is wrong.
  """
  if isinstance(loss, Loss):
    if loss.name not in _TABLE and not loss.settings:
      _TABLE[loss.name] = loss   # so that its name finds it again
    return loss
  if isinstance(loss, str):
    if loss in _TABLE:
      return _TABLE[loss]
    if not named_objects.is_reference(loss):
      raise LossNotFound(f'unknown loss {loss!r}; known: '
                         f'{", ".join(loss_names())}, or MODULE:NAME of a '
                         f'function of yours')
    try:
      value = named_objects.resolve(loss)
    except NameNotFound as e:
      raise LossNotFound(f'loss {e}') from None
    if isinstance(value, Loss):
      found = dataclasses.replace(value, name=loss)
    elif callable(value):
      found = _from_function(value, loss)
    else:
      raise LossNotFound(f'loss {loss!r} names a {type(value).__name__}, '
                         f'not a function')
    _TABLE[loss] = found
    return found
  if callable(loss):
    for entry in _TABLE.values():
      if entry.per_example is loss:
        return entry
    # MODULE:QUALNAME: never a built-in's name; it imports back to the
    # function unless it is local, a lambda or in __main__.
    name = named_objects.reference_of(loss) or (
        f'{getattr(loss, "__module__", "")}:'
        f'{getattr(loss, "__qualname__", type(loss).__name__)}')
    _TABLE[name] = found = Loss(name, loss)
    return found
  raise LossNotFound(f'a loss must be a name, MODULE:NAME or a function, '
                     f'got {loss!r}')


def data_loss(params: model.Params, x: model.Features, y: jax.Array,
              loss='softmax') -> jax.Array:
  """The mean data loss of ``loss`` (`get_loss`) over the examples."""
  return get_loss(loss).mean(params, x, y)


def l2_penalty(params: model.Params, l2: float) -> jax.Array:
  """``l2 * sum(W ** 2)``; the bias is not penalised. Returns a scalar."""
  return l2 * jnp.sum(params.W**2)


def objective(params: model.Params, x: model.Features, y: jax.Array,
              l2: float = 0.0, loss='softmax') -> jax.Array:
  """``data loss + l2_penalty``: what training minimises (scalar).

  ``loss``: a name of the table (default 'softmax': `softmax_loss`, y int
  [N]; 'sigmoid': `sigmoid_loss`, y multi-hot [N, C]), a ``MODULE:NAME``, a
  function or a `Loss`.
  """
  return data_loss(params, x, y, loss) + l2_penalty(params, l2)
