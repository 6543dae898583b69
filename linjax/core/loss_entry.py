"""`Loss`: what the table of losses (linjax/core/losses.py) holds per loss.

Shapes: N examples, C classes. A `Loss` is a per-example function in
optax's convention with the facts the rest of linjax needs about it: its
label kind (`CLASS` or `MULTI_HOT`, checked by `check_labels` /
`check_multi_hot`), its probability map, an optional hand-derived score
gradient and numpy twin, the options it takes and those bound. Its
methods are linjax's one implementation of what callers do with a loss:
evaluate it with its settings, take its score gradient for the training
step, check labels, score on the host, turn scores into probabilities.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import host_losses
from linjax.core import model
from linjax.core.features import is_concrete
from linjax.core.named_objects import NameNotFound

CLASS = 'class'            # labels int [...]: one class per document
MULTI_HOT = 'multi_hot'    # labels [..., C] in {0, 1}: multi-label
LABEL_KINDS = (CLASS, MULTI_HOT)


def check_labels(y: jax.Array, num_examples: int, num_classes: int) -> None:
  """Raises ValueError unless y is int [N] with values in [0, C) (if concrete)."""
  if jnp.ndim(y) != 1 or jnp.shape(y)[0] != num_examples:
    raise ValueError(f'y: expected int labels of shape [{num_examples}], got '
                     f'shape {jnp.shape(y)}.')
  if not jnp.issubdtype(jnp.result_type(y), jnp.integer):
    raise ValueError(f'y: labels must be integer class ids, got dtype '
                     f'{jnp.result_type(y)}; encode label names with a '
                     f'LabelMap first.')
  if is_concrete(y) and jnp.size(y):
    values = np.asarray(y)  # numpy: jnp.min would be traced inside jit
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
      raise ValueError(f'y: labels must lie in [0, {num_classes}) but range '
                       f'over [{lo}, {hi}].')


def check_multi_hot(Y: jax.Array, num_examples: int,
                    num_classes: int) -> None:
  """Raises ValueError unless Y is [N, C] with values in {0, 1} (if concrete)."""
  if jnp.ndim(Y) != 2 or tuple(jnp.shape(Y)) != (num_examples, num_classes):
    raise ValueError(f'Y: expected multi-hot labels of shape [{num_examples}, '
                     f'{num_classes}] (one column per label), got shape '
                     f'{jnp.shape(Y)}.')
  if is_concrete(Y) and jnp.size(Y):
    values = np.asarray(Y)
    bad = (values != 0) & (values != 1)
    if bad.any():
      n, c = np.argwhere(bad)[0]
      raise ValueError(f'Y: multi-hot labels must be 0 or 1; Y[{n}, {c}] = '
                       f'{values[n, c]}.')


class LossNotFound(NameNotFound):
  """A loss name is neither in the table nor an importable MODULE:NAME."""


@dataclasses.dataclass(frozen=True)
class Loss:
  """One loss: its per-example function and what the rest of linjax needs.

  Attributes:
    name: its name in the table (or its ``MODULE:NAME`` reference): what
      the runner's ``--config.train.loss`` and a saved model hold.
    per_example: ``(logits [..., C], labels, **settings) -> [...]``, the loss
      of each example (labels int [...] for CLASS, [..., C] for MULTI_HOT).
    label_kind: CLASS or MULTI_HOT.
    probability: a key of `host_losses.PROBABILITIES` turning scores
      [N, C] into probabilities, or None (a margin loss: no probabilities).
    options: keyword options ``per_example`` takes (``train.X`` fields).
    settings: the options' values bound to this Loss, ((name, value), ...).
    hand_grad: ``(logits, labels, **settings) -> (loss [...], dloss/dlogits
      [..., C])`` derived by hand, or None; the reference of `manual_grad`.
    host: ``(logits, labels, **settings) -> float32 [N]``: ``per_example``
      in numpy (`host_losses`), or None (then the JAX function is used).
  """

  name: str
  per_example: Callable
  label_kind: str = CLASS
  probability: str | None = None
  options: tuple = ()
  settings: tuple = ()
  hand_grad: Callable | None = None
  host: Callable | None = None

  def __post_init__(self):
    if not isinstance(self.name, str) or not self.name:
      raise ValueError(f'Loss: name must be a non-empty str, got '
                       f'{self.name!r}.')
    if not callable(self.per_example):
      raise ValueError(f'Loss {self.name!r}: per_example must be a function, '
                       f'got {self.per_example!r}.')
    if self.label_kind not in LABEL_KINDS:
      raise ValueError(f'Loss {self.name!r}: label_kind must be one of '
                       f'{LABEL_KINDS}, got {self.label_kind!r}.')
    if (self.probability is not None and
        self.probability not in host_losses.PROBABILITIES):
      raise ValueError(f'Loss {self.name!r}: probability must be None or one '
                       f'of {tuple(host_losses.PROBABILITIES)}, got '
                       f'{self.probability!r}.')

  @property
  def multi_label(self) -> bool:
    """Whether its labels are multi-hot rows (multi-label data)."""
    return self.label_kind == MULTI_HOT

  def with_settings(self, **values) -> Loss:
    """This loss with options bound (only those it takes; 0/None: unset)."""
    bad = [k for k, v in values.items() if v and k not in self.options]
    if bad:
      raise ValueError(f'loss {self.name!r} takes no option {bad[0]!r} (it '
                       f'takes: {", ".join(self.options) or "none"}).')
    kept = dict(self.settings)
    kept.update({k: v for k, v in values.items() if v})
    return dataclasses.replace(self, settings=tuple(sorted(kept.items())))

  def __call__(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """float [...]: each example's loss, with the bound settings."""
    return self.per_example(logits, labels, **dict(self.settings))

  def value_and_score_grad(self, logits: jax.Array, labels: jax.Array,
                           weights: jax.Array):
    """(loss [D], ``d sum(weights * loss) / d logits`` [D, C]).

    The hand-derived gradient where the table has one (the training step's
    choice: the same numbers, less to compile), else autodiff (`jax.vjp` of
    the per-example function). ``dataclasses.replace(loss,
    hand_grad=None)`` is the same loss differentiated by JAX.
    """
    if self.hand_grad is not None:
      value, grad = self.hand_grad(logits, labels, **dict(self.settings))
      return value, grad * weights[..., None].astype(grad.dtype)
    value, pullback = jax.vjp(lambda z: self(z, labels), logits)
    return value, pullback(weights.astype(value.dtype))[0]

  def check_labels(self, y, num_examples: int, num_classes: int) -> None:
    """ValueError unless ``y`` has this loss's label kind and shape."""
    if self.multi_label:
      check_multi_hot(y, num_examples, num_classes)
    else:
      check_labels(y, num_examples, num_classes)

  def mean(self, params: model.Params, x: model.Features,
           y: jax.Array) -> jax.Array:
    """Mean over the N examples of the loss of ``logits(params, x)``."""
    z = model.logits(params, x)
    self.check_labels(y, z.shape[0], z.shape[1])
    return jnp.mean(self(z, y))

  def host_loss(self, z, y) -> np.ndarray:
    """float32 [N] per-example loss of host scores z [N, C] (numpy)."""
    if self.host is not None:
      return self.host(z, y, **dict(self.settings))
    with jax.default_device(jax.devices('cpu')[0]):
      return np.asarray(_jitted(self)(np.asarray(z, np.float32),
                                      np.asarray(y)), np.float32)

  @property
  def has_probabilities(self) -> bool:
    return self.probability is not None

  def proba(self, z) -> np.ndarray:
    """float32 [N, C] probabilities of host scores z [N, C].

    Raises:
      ValueError: for a margin loss (no probability map).
    """
    if self.probability is None:
      raise ValueError(f'predict_proba is not available for loss '
                       f'{self.name!r}: a margin loss gives scores, not '
                       f'probabilities (use the scores, or train with a '
                       f'probabilistic loss such as softmax).')
    return host_losses.PROBABILITIES[self.probability](z)


@functools.lru_cache(maxsize=64)
def _jitted(loss: Loss):
  return jax.jit(loss.__call__)
