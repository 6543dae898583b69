"""Three gradients of the objective and a checker that compares them.

* `manual_grad`: the lecture's hand-derived gradient, no autodiff. For example
  i with probabilities p_i = softmax(x_i W + b): the target column gets
  ``-x_i + p_{i,y} x_i`` and every other column k gets ``p_{i,k} x_i``, i.e.
  ``x_i^T (p_i - onehot(y_i))``; averaged over examples, plus ``2 l2 W``.
  With the multi-label ``sigmoid`` loss each label c is its own binary
  logistic regression: column c gets ``(sigmoid(z_ic) - Y_ic) x_i``, i.e.
  ``x_i^T (sigmoid(z_i) - Y_i)``, the same form with sigmoid for softmax and
  the multi-hot row for the one-hot. Any loss of the table with a
  hand-derived score gradient (``Loss.hand_grad``) has one.
* `numerical_grad`: central finite differences for every coordinate, evaluated
  the JAX way (vmap over chunks of basis directions, `lax.map` over chunks).
* `jax.grad(objective)`.

`check_grad` runs all three in float64 and reports their disagreement; for
a loss without a hand-derived gradient (hinge, a user's) it compares
`jax.grad` with finite differences only.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

from linjax.core import losses
from linjax.core import model
from linjax.core.features import SparseFeatures


def manual_grad(params: model.Params, x: model.Features, y: jax.Array,
                l2: float = 0.0, loss='softmax') -> model.Params:
  """Analytic gradient of `objective`, written out by hand.

  The residual ``r_i = dloss_i / dz_i`` is the loss's hand-derived score
  gradient (``Loss.hand_grad`` in the table of linjax/core/losses.py: ``p_i
  - onehot(y_i)`` for softmax, ``sigmoid(z_i) - Y_i`` for sigmoid); then
  ``dW = x^T r / N + 2 l2 W`` and ``db = sum_i r_i / N``.

  Args:
    params: Params with W [F, C], b [C].
    x: dense float [N, F] or SparseFeatures ([N, L], [N, L]).
    y: int [N] labels (softmax) or multi-hot [N, C] in {0, 1} (sigmoid).
    l2: L2 strength.
    loss: a loss of the table with a hand-derived gradient (see
      `losses.get_loss`).

  Returns:
    Params: dW [F, C] and db [C].

  Raises:
    ValueError: the loss has no hand-derived gradient (its gradient is
      `jax.grad` of the table's function; `check_grad` checks that against
      finite differences).
  """
  spec = losses.get_loss(loss)
  if spec.hand_grad is None:
    raise ValueError(f'manual_grad: loss {spec.name!r} has no hand-derived '
                     'gradient (jax.grad of its function is its gradient).')
  z = model.logits(params, x)
  n, num_classes = z.shape
  spec.check_labels(y, n, num_classes)
  _, residual = spec.hand_grad(z, y, **dict(spec.settings))
  residual = residual / n
  if isinstance(x, SparseFeatures):
    contrib = x.weights[..., None] * residual[:, None, :]      # [N, L, C]
    dW = jnp.zeros_like(params.W).at[x.ids].add(contrib.astype(params.W.dtype))
  else:
    dW = x.T @ residual
  dW = dW + 2.0 * l2 * params.W
  return model.Params(W=dW, b=jnp.sum(residual, axis=0))


def numerical_grad(fn: Callable[[model.Params], jax.Array], params,
                   eps: float = 1e-5, chunk_size: int = 256):
  """Central finite differences ``(f(w + eps e_j) - f(w - eps e_j)) / 2 eps``.

  Every coordinate of every leaf is perturbed. Perturbed copies are evaluated
  with `vmap` over a chunk of ``chunk_size`` basis directions and `lax.map`
  over chunks, so the work is one compiled program, not a Python loop; memory
  is ``chunk_size x num_params``. Use float64 parameters: in float32 the
  rounding error of a difference quotient is ~1e-7 / eps.

  Args:
    fn: scalar function of a pytree like ``params`` (must be traceable).
    params: pytree of float arrays (e.g. `Params`).
    eps: step size h.
    chunk_size: basis directions evaluated together.

  Returns:
    A pytree like ``params`` holding the estimated gradient.
  """
  flat, unravel = ravel_pytree(params)
  size = flat.shape[0]
  chunk = max(1, min(chunk_size, size))
  num_chunks = -(-size // chunk)
  f = lambda v: fn(unravel(v))

  def chunk_slopes(start):
    idx = start + jnp.arange(chunk)
    step = eps * jax.nn.one_hot(idx, size, dtype=flat.dtype)  # [chunk, size]
    plus = jax.vmap(f)(flat + step)
    minus = jax.vmap(f)(flat - step)
    return (plus - minus) / (2.0 * eps)

  starts = jnp.arange(num_chunks) * chunk
  slopes = jax.jit(lambda s: jax.lax.map(chunk_slopes, s))(starts)
  return unravel(slopes.reshape(-1)[:size])


def slope_table(fn: Callable, params, h: float = 1e-4,
                max_rows: int = 20) -> list[dict]:
  """The lecture's per-dimension table of forward differences.

  For each of the first ``max_rows`` coordinates: its name, the loss before,
  the loss after adding h to that coordinate, and the slope
  ``(after - before) / h``.

  Returns:
    List of dicts with keys coordinate, loss_before, loss_after, slope.
  """
  flat, unravel = ravel_pytree(params)
  names = _coordinate_names(params)
  before = float(fn(params))
  rows = []
  for j in range(min(max_rows, flat.shape[0])):
    after = float(fn(unravel(flat.at[j].add(h))))
    rows.append(dict(coordinate=names[j], loss_before=before,
                     loss_after=after, slope=(after - before) / h))
  return rows


def _coordinate_names(params) -> list[str]:
  leaves = jax.tree_util.tree_leaves_with_path(params)
  names = []
  for path, leaf in leaves:
    base = jax.tree_util.keystr(path, simple=True, separator='.')
    for index in np.ndindex(*np.shape(leaf)):
      names.append(f'{base}[{",".join(map(str, index))}]')
  return names


@dataclasses.dataclass
class GradCheckReport:
  """Disagreement of the three gradients, per leaf.

  Relative errors are normwise: ``max|a - b| / max|b|`` over a leaf, with b
  the autodiff gradient, so that coordinates whose true gradient is exactly 0
  (absent features) do not divide by zero.
  """

  max_abs_error: dict      # {'manual': {'W': ..., 'b': ...}, 'numerical': {...}}
  max_rel_error: dict
  tolerance: float
  passed: bool
  seconds: dict            # wall time of each gradient (compile included)
  num_params: int
  table: list = dataclasses.field(default_factory=list)

  def format(self) -> str:
    """A human-readable report (with the slope table, if computed)."""
    lines = [f'gradient check over {self.num_params} parameters '
             f'(float64, tolerance {self.tolerance:g}): '
             f'{"PASS" if self.passed else "FAIL"}']
    for method in self.max_rel_error:
      errs = ', '.join(f'{leaf}: rel {self.max_rel_error[method][leaf]:.2e} '
                       f'abs {self.max_abs_error[method][leaf]:.2e}'
                       for leaf in self.max_rel_error[method])
      lines.append(f'  jax.grad vs {method:9s} {errs}')
    lines.append('  seconds: ' + ', '.join(
        f'{k} {v:.3f}' for k, v in self.seconds.items()))
    if self.table:
      lines.append(f'  {"coordinate":>12s} {"loss before":>14s} '
                   f'{"loss after +h":>14s} {"slope":>10s}')
      for row in self.table:
        lines.append(f'  {row["coordinate"]:>12s} {row["loss_before"]:14.8f} '
                     f'{row["loss_after"]:14.8f} {row["slope"]:10.5f}')
    return '\n'.join(lines)


def _to_float64(tree):
  return jax.tree_util.tree_map(
      lambda a: jnp.asarray(a, jnp.float64)
      if jnp.issubdtype(jnp.result_type(a), jnp.floating) else jnp.asarray(a),
      tree)


def check_grad(params: model.Params, x: model.Features, y: jax.Array,
               l2: float = 0.0, tolerance: float = 1e-6, eps: float = 1e-5,
               table_rows: int = 0,
               manual_fn: Callable | None = None,
               loss='softmax') -> GradCheckReport:
  """Compares `jax.grad(objective)`, `manual_grad` and `numerical_grad`.

  Everything is cast to and computed in float64 (inside ``jax.enable_x64``),
  whatever the caller's precision. ``manual_fn`` checks another hand-written
  gradient in place of `manual_grad` (a student's, or a deliberately wrong
  one in a test that the checker can fail).

  Args:
    params: Params with W [F, C], b [C].
    x: dense [N, F] or SparseFeatures ([N, L], [N, L]).
    y: int [N] labels (softmax) or multi-hot [N, C] (sigmoid).
    l2: L2 strength of the objective.
    tolerance: largest normwise relative error that passes.
    eps: finite-difference step.
    table_rows: if > 0, include the lecture's slope table for that many
      coordinates.
    manual_fn: ``(params, x, y, l2) -> Params`` gradient to compare (default
      `manual_grad`); it must be traceable by `jax.jit`.
    loss: the objective's data loss, any loss of the table (see
      `losses.get_loss`); without a hand-derived gradient (and no
      ``manual_fn``) the report has no 'manual' entry.

  Returns:
    A GradCheckReport.
  """
  with jax.enable_x64(True):
    p64, x64 = _to_float64(params), _to_float64(x)
    y64 = jnp.asarray(y)
    spec = losses.get_loss(loss)
    fn = lambda p: losses.objective(p, x64, y64, l2, spec)
    hand = (functools.partial(manual_grad, loss=spec) if manual_fn is None
            else manual_fn)
    methods = (('autodiff', lambda: jax.jit(jax.grad(fn))(p64)),
               ('manual', lambda: jax.jit(hand)(p64, x64, y64, l2)),
               ('numerical', lambda: numerical_grad(fn, p64, eps)))
    if manual_fn is None and spec.hand_grad is None:
      methods = methods[::2]
    grads, seconds = {}, {}
    for name, compute in methods:
      start = time.perf_counter()
      grads[name] = jax.block_until_ready(compute())
      seconds[name] = time.perf_counter() - start
    ref = grads['autodiff']
    abs_err, rel_err = {}, {}
    for method in [m for m, _ in methods[1:]]:
      abs_err[method], rel_err[method] = {}, {}
      for field in ref._fields:
        a = np.asarray(getattr(grads[method], field))
        b = np.asarray(getattr(ref, field))
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        abs_err[method][field] = diff
        rel_err[method][field] = diff / max(scale, np.finfo(np.float64).tiny)
    passed = all(e <= tolerance for m in rel_err.values() for e in m.values())
    table = slope_table(fn, p64, max_rows=table_rows) if table_rows else []
  return GradCheckReport(max_abs_error=abs_err, max_rel_error=rel_err,
                         tolerance=tolerance, passed=bool(passed),
                         seconds=seconds,
                         num_params=sum(int(np.size(leaf)) for leaf in
                                        jax.tree_util.tree_leaves(params)),
                         table=table)
