"""The sparse step against a numpy reference written here, update by update.

For every optimiser of the table x {L2, weight decay} x {clipping off, on},
`fit` on the sparse path is replayed in float64 numpy: the engine's packed
steps in its step order, each step's softmax gradient over its documents,
the lazy L2 term ``2 l2 W`` on the rows the step touches (or, for plain
SGD, L2 as a decay of every row), global-norm clipping, the optimiser's
per-row state (lazy: untouched rows keep theirs, the step count is global),
decoupled weight decay of every row, and the linear schedule. The labels
are random (no feature separates the classes) and the learning rate small,
so the model stays in the regime where a wrong factor shows.

Then the sparse and dense paths against each other for every loss of the
table, and the dense path against `jax.grad` of the loss it is given.
"""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import losses
from linjax.core import model
from linjax.engine import packing
from linjax.engine import training as train
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.engine.step_order import batch_order
from linjax.text import csr

F, C = 40, 3


def corpus(n=40, seed=0):
  """Random documents with random labels: nothing separates the classes."""
  rng = np.random.default_rng(seed)
  rows = []
  for _ in range(n):
    ids = np.unique(rng.integers(0, F, rng.integers(2, 8)))
    w = rng.uniform(0.5, 2.0, ids.size)
    rows.append((ids, w / np.linalg.norm(w)))
  return (csr.from_rows(rows, F),
          rng.integers(0, C, n).astype(np.int32))


def options(name, lr, l2=0.0, weight_decay=0.0, clip=0.0, momentum=0.0,
            **train_kw):
  return (OptimizerOptions(name=name, learning_rate=lr, schedule='linear',
                           momentum=momentum, weight_decay=weight_decay,
                           clip_norm=clip),
          TrainOptions(**dict(dict(batch_size=4, token_budget=24, epochs=3,
                                   docs_per_step=0, max_steps=0, l2=l2,
                                   update_path='sparse'), **train_kw)))


class Direction:
  """optax's preconditioners, per coordinate, in numpy (optax defaults)."""

  def __init__(self, name, momentum):
    self.name, self.momentum = name, momentum
    self.state = {}

  def __call__(self, key, g, sel, shape, t):
    s = self.state.setdefault(key, dict(
        m=np.zeros(shape), v=np.zeros(shape),
        acc=np.full(shape, 0.1)))   # adagrad's initial accumulator
    m, v = s['m'][sel], s['v'][sel]
    if self.name == 'sgd':
      if not self.momentum:
        return g
      s['m'][sel] = g + self.momentum * m            # optax.trace
      return s['m'][sel]
    if self.name == 'adagrad':                       # optax.scale_by_rss
      s['acc'][sel] += g ** 2
      return g / np.sqrt(s['acc'][sel] + 1e-7)
    if self.name == 'adam':                          # bias-corrected
      s['m'][sel] = m = 0.9 * m + 0.1 * g
      s['v'][sel] = v = 0.999 * v + 0.001 * g ** 2
      return (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    if self.name == 'lion':                          # sign of the blend
      d = np.sign(0.1 * g + 0.9 * m)
      s['m'][sel] = 0.01 * g + 0.99 * m
      return d
    if self.name == 'adabelief':                     # variance around m
      s['m'][sel] = m = 0.9 * m + 0.1 * g
      s['v'][sel] = v = 0.999 * v + 0.001 * (g - m) ** 2 + 1e-16
      return (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-16)
    raise ValueError(self.name)


def reference(x, y, opt, tc):
  """The sparse path's model, replayed in float64 numpy (module docstring)."""
  packed = packing.pack(x, y, token_budget=tc.token_budget,
                        max_docs=tc.batch_size, seed=tc.seed, dedupe=True)
  dense = x.to_dense().astype(np.float64)
  total = packed.num_steps * tc.epochs
  plain = opt.name == 'sgd' and not opt.momentum and not opt.clip_norm
  direction = Direction(opt.name, opt.momentum)
  W, b = np.zeros((F, C)), np.zeros(C)
  t = 0
  for epoch in range(tc.epochs):
    for g in np.asarray(batch_order(tc.seed, epoch, packed.num_steps)):
      docs = packed.doc_index[g].reshape(-1)
      docs = docs[docs >= 0]
      rows = np.unique(np.concatenate(
          [x.ids[x.indptr[d]:x.indptr[d + 1]] for d in docs]))
      xb = dense[docs]
      z = xb @ W + b
      p = np.exp(z - z.max(1, keepdims=True))
      p /= p.sum(1, keepdims=True)
      r = (p - np.eye(C)[y[docs]]) / docs.size       # d mean NLL / dz
      gW, gb = (xb.T @ r)[rows], r.sum(0)
      decay = opt.weight_decay
      if plain:
        decay += 2 * tc.l2       # exact: L2's gradient is a decay of W
      else:
        gW = gW + 2 * tc.l2 * W[rows]    # lazy: the touched rows only
      if opt.clip_norm:
        norm = np.sqrt(np.sum(gW ** 2) + np.sum(gb ** 2))
        if norm >= opt.clip_norm:
          gW, gb = gW / norm * opt.clip_norm, gb / norm * opt.clip_norm
      t += 1
      dW = direction('W', gW, rows, (F, C), t)
      db = direction('b', gb, slice(None), (C,), t)
      lr = opt.learning_rate * (1.0 - (t - 1) / total)
      W *= 1.0 - lr * decay                  # every row, exactly
      W[rows] -= lr * dW
      b -= lr * db
  return W, b


OPTIMIZERS = (('sgd', 0.0, 0.5), ('sgd', 0.9, 0.1), ('adagrad', 0.0, 0.1),
              ('adam', 0.0, 0.02), ('lion', 0.0, 0.005),
              ('adabelief', 0.0, 0.02))
CASES = [dict(testcase_name=f'{name}{"_momentum" if momentum else ""}_'
              f'{reg}{"_clip" if clip else ""}', name=name, momentum=momentum,
              lr=lr, reg=reg, clip=clip)
         for name, momentum, lr in OPTIMIZERS for reg in ('l2', 'wd')
         for clip in (0.0, 0.3)]


class SparseStepTest(parameterized.TestCase):

  @parameterized.named_parameters(*CASES)
  def test_matches_the_numpy_reference(self, name, momentum, lr, reg, clip):
    x, y = corpus()
    reg_kw = dict(l2=0.3) if reg == 'l2' else dict(weight_decay=0.5)
    opt, tc = options(name, lr, clip=clip, momentum=momentum, **reg_kw)
    got = train.fit(x, y, C, optimizer=opt, training=tc)
    self.assertEqual(got.update, 'sparse')
    W, b = reference(x, y, opt, tc)
    # Something learned, and the regulariser matters at this size: the
    # same run without it lands measurably elsewhere.
    self.assertGreater(np.abs(W).max(), 20 * 2e-5)
    unregularised, _ = reference(
        x, y, dataclasses.replace(opt, weight_decay=0.0),
        dataclasses.replace(tc, l2=0.0))
    self.assertGreater(np.abs(unregularised - W).max(), 50 * 2e-5)
    np.testing.assert_allclose(got.params.W, W, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(got.params.b, b, rtol=2e-4, atol=2e-5)


def multi_hot(y, seed=5):
  """A multi-hot [N, C]: each document's class and, at random, others."""
  rng = np.random.default_rng(seed)
  Y = (rng.random((y.shape[0], C)) < 0.3).astype(np.uint8)
  Y[np.arange(y.shape[0]), y] = 1
  return Y


def reference_dense(x, labels, loss, tc, lr):
  """Plain SGD with jax.grad of the mean of ``loss`` over each step."""
  packed = packing.pack(x, labels, token_budget=tc.token_budget,
                        max_docs=tc.batch_size, seed=tc.seed, dedupe=False)
  dense = jnp.asarray(x.to_dense())
  total = packed.num_steps * tc.epochs
  objective = lambda p, xb, yb: jnp.mean(loss(xb @ p.W + p.b, yb))
  grad = jax.jit(jax.grad(objective))
  p = model.Params(jnp.zeros((F, C)), jnp.zeros(C))
  t = 0
  for epoch in range(tc.epochs):
    for g in np.asarray(batch_order(tc.seed, epoch, packed.num_steps)):
      docs = packed.doc_index[g].reshape(-1)
      docs = docs[docs >= 0]
      d = grad(p, dense[docs], jnp.asarray(labels[docs]))
      step = lr * (1.0 - t / total)
      p = model.Params(p.W - step * d.W, p.b - step * d.b)
      t += 1
  return p


def _squared_error(logits, labels):
  """A user's loss (not in the table): squared error to the one-hot."""
  return jnp.sum((logits - jax.nn.one_hot(labels, logits.shape[-1])) ** 2,
                 -1)


class EveryLossTest(parameterized.TestCase):

  @parameterized.parameters(*(list(losses.BUILT_IN_NAMES) + ['user']))
  def test_sparse_and_dense_agree_and_follow_the_loss(self, name):
    x, y = corpus(seed=3)
    loss = losses.get_loss(_squared_error if name == 'user' else name)
    labels = multi_hot(y) if loss.multi_label else y
    lr = 0.5
    fits = {}
    for path in ('sparse', 'dense'):
      opt, tc = options('sgd', lr, update_path=path, loss=loss.name)
      fits[path] = train.fit(x, labels, C, optimizer=opt, training=tc)
      self.assertEqual(fits[path].update, path)
    want = reference_dense(x, labels, loss, tc, lr)
    self.assertGreater(float(jnp.abs(want.W).max()), 0.05)
    for path, got in fits.items():
      np.testing.assert_allclose(got.params.W, want.W, atol=2e-5,
                                 err_msg=path)
      np.testing.assert_allclose(got.params.b, want.b, atol=2e-5,
                                 err_msg=path)
    # The training loss is the loss's own, not softmax's.
    history = fits['dense'].history
    self.assertTrue(np.isfinite(history[-1]['train_loss']))

  def test_label_smoothing_trains_and_validates_with_the_smoothed_loss(self):
    x, y = corpus(seed=6)
    loss = losses.get_loss('softmax').with_settings(label_smoothing=0.2)
    fits = {}
    for path in ('sparse', 'dense'):
      opt, tc = options('sgd', 0.5, update_path=path, label_smoothing=0.2,
                        epochs=2)
      fits[path] = train.fit(x, y, C, optimizer=opt, training=tc, val_x=x,
                             val_y=y)
    want = reference_dense(x, y, loss, tc, 0.5)
    for got in fits.values():
      np.testing.assert_allclose(got.params.W, want.W, atol=2e-5)
    # The validation loss is the smoothed loss of the final model, written
    # out here in numpy: (1 - a) (-log p_y) + a mean_k (-log p_k).
    W, b = fits['sparse'].params
    z = x.to_dense() @ W + b
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    smoothed = 0.8 * -logp[np.arange(y.size), y] + 0.2 * -logp.mean(1)
    self.assertAlmostEqual(fits['sparse'].history[-1]['val_loss'],
                           float(smoothed.mean()), places=5)
    self.assertGreater(abs(float(smoothed.mean()) + float(
        logp[np.arange(y.size), y].mean())), 1e-3)   # not the plain NLL

  def test_early_stopping_on_loss_uses_the_trained_loss(self):
    """metric=loss with hinge: the best epoch is the one of the lowest mean
    hinge on validation (numpy here), whose params come back."""
    x, y = corpus(seed=7)
    vx, vy = corpus(n=30, seed=8)
    opt, tc = options('sgd', 2.0, loss='hinge', metric='loss', patience=2,
                      epochs=8)
    got = train.fit(x, y, C, optimizer=opt, training=tc, val_x=vx, val_y=vy)
    W, b = got.params
    z = vx.to_dense() @ W + b
    rival = np.where(np.eye(C, dtype=bool)[vy], -np.inf, z).max(1)
    hinge = np.maximum(1 + rival - z[np.arange(vy.size), vy], 0).mean()
    losses_seen = [h['val_loss'] for h in got.history]
    self.assertEqual(got.best_epoch, int(np.argmin(losses_seen)) + 1)
    self.assertAlmostEqual(losses_seen[got.best_epoch - 1], float(hinge),
                           places=5)

  def test_autodiff_trains_what_the_hand_derived_gradient_trains(self):
    """softmax and sigmoid keep a hand-derived score gradient for speed
    (BUILD_NOTES); JAX's gradient of the same function trains the same
    model to float32 rounding."""
    x, y = corpus(seed=4)
    for name, labels in (('softmax', y), ('sigmoid', multi_hot(y))):
      entry = losses.get_loss(name)
      auto = dataclasses.replace(entry, hand_grad=None, name=f'auto_{name}')
      losses.register_loss(auto.name, auto.per_example,
                           label_kind=auto.label_kind,
                           probability=auto.probability)
      got = {}
      for loss in (name, auto.name):
        opt, tc = options('adam', 0.05, l2=0.01, loss=loss)
        got[loss] = train.fit(x, labels, C, optimizer=opt,
                              training=tc).params
      np.testing.assert_allclose(got[name].W, got[auto.name].W, atol=1e-5)
      self.assertGreater(np.abs(got[name].W).max(), 0.05)


if __name__ == '__main__':
  absltest.main()
