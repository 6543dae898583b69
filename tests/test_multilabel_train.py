"""The engine's multi-label (sigmoid) training against a dense reference.

The reference is written here: plain SGD with `jax.grad` of the mean over a
step's documents of the summed binary cross-entropy (`losses.sigmoid_loss`)
over the full Params, on the same packed steps in the same order.
"""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from linjax.core import losses
from linjax.core import model
from linjax.core.errors import ConfigError
from linjax.engine import hyper_sweep
from linjax.engine import packing
from linjax.engine import scoring
from linjax.engine import training as train
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.engine.step_order import batch_order
from linjax.text import csr

F, C = 60, 4


def corpus(n=48, seed=0):
  """Random docs with 0-3 labels each; a label's marker feature c marks it.

  L2-normalised rows; some documents have no label at all (a document with
  no tags), some have several.
  """
  rng = np.random.default_rng(seed)
  Y = np.zeros((n, C), np.uint8)
  rows = []
  for i in range(n):
    tags = rng.choice(C, rng.integers(0, 4), replace=False)
    Y[i, tags] = 1
    noise = rng.integers(C, F, rng.integers(1, 8))
    ids = np.unique(np.concatenate([tags, noise]))
    w = rng.uniform(0.5, 2.0, ids.size)
    rows.append((ids, w / np.linalg.norm(w)))
  return csr.from_rows(rows, F), Y


def options(**train_kw):
  opt = dict(learning_rate=0.5, schedule='linear')
  opt.update({k[4:]: train_kw.pop(k) for k in list(train_kw)
              if k.startswith('opt_')})
  kw = dict(batch_size=4, token_budget=24, epochs=3, loss='sigmoid')
  kw.update(train_kw)
  return OptimizerOptions(**opt), TrainOptions(**kw)


def fit(x, Y, opts, **kwargs):
  optimizer, training = opts
  return train.fit(x, Y, C, optimizer=optimizer, training=training, **kwargs)


def reference_sgd(x, Y, opts):
  """SGD with jax.grad of sigmoid_loss + L2 over the full Params."""
  oc, tc = opts
  packed = packing.pack(x, Y, token_budget=tc.token_budget,
                        max_docs=tc.batch_size, seed=tc.seed, dedupe=False)
  dense = x.to_dense()
  steps, total = packed.num_steps, packed.num_steps * tc.epochs
  params = model.Params(jnp.zeros((F, C)), jnp.zeros(C))
  grad = jax.jit(jax.grad(lambda p, xb, Yb: losses.objective(
      p, xb, Yb, tc.l2, loss='sigmoid')))
  t = 0
  for epoch in range(tc.epochs):
    for g in np.asarray(batch_order(tc.seed, epoch, steps)):
      docs = packed.doc_index[g].reshape(-1)
      docs = docs[docs >= 0]
      lr = oc.learning_rate * (
          1.0 - t / total if oc.schedule == 'linear' else 1.0)
      d = grad(params, jnp.asarray(dense[docs]), jnp.asarray(Y[docs]))
      params = model.Params(params.W - lr * d.W, params.b - lr * d.b)
      t += 1
  return params


def precision_at_1(z, Y):
  """fastText's P@1: over the documents with a label."""
  labelled = Y.any(1)
  return float(np.mean(Y[np.arange(len(Y)), z.argmax(-1)][labelled] > 0))


class SharedExpLossTest(absltest.TestCase):

  def test_nll_and_score_grad_equal_the_reference_and_jax_grad(self):
    # The step's one-exp form against binary_cross_entropy and jax.grad of
    # it, scores from -1e4 to 1e4 (both branches, no overflow).
    z = jnp.asarray([[-1e4, -30.0, -2.5, -1e-3, 0.0],
                     [1e-3, 0.7, 3.0, 30.0, 1e4]], jnp.float32)
    Y = jnp.asarray([[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]], jnp.uint8)
    nll, g = losses.sigmoid_nll_and_score_grad(z, Y)
    want = losses.sigmoid_nll_from_logits(z, Y)
    want_g = jax.grad(lambda s: jnp.sum(losses.sigmoid_nll_from_logits(
        s, Y)))(z)
    np.testing.assert_allclose(nll, want, rtol=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-6, atol=1e-7)
    # Hand-worked: z=0 costs log 2 and pulls by 1/2 towards its label.
    self.assertAlmostEqual(float(g[0, 4]), -0.5, places=7)
    np.testing.assert_allclose(float(g[1, 4]), 0.0, atol=1e-30)  # sure, right


class PackingTest(absltest.TestCase):

  def test_every_document_keeps_its_label_set(self):
    x, Y = corpus(n=30)
    p = packing.pack(x, Y, token_budget=16, max_docs=4, dedupe=True)
    self.assertEqual(p.labels.shape, p.mask.shape + (C,))
    self.assertEqual(p.labels.dtype, np.uint8)
    real = p.doc_index >= 0
    np.testing.assert_array_equal(p.labels[real], Y[p.doc_index[real]])
    np.testing.assert_array_equal(p.labels[~real], 0)


class SigmoidFitTest(parameterized.TestCase):

  @parameterized.parameters(('sparse', 0.0), ('sparse', 0.01),
                            ('dense', 0.0), ('dense', 0.01))
  def test_sgd_matches_dense_reference(self, update, l2):
    x, Y = corpus()
    opts = options(update_path=update, l2=l2)
    got = fit(x, Y, opts)
    self.assertEqual(got.update, update)
    want = reference_sgd(x, Y, opts)
    self.assertGreater(np.abs(want.W).max(), 0.1)   # it did learn something
    np.testing.assert_allclose(got.params.W, want.W, atol=2e-6)
    np.testing.assert_allclose(got.params.b, want.b, atol=2e-6)

  def test_adagrad_sparse_equals_dense(self):
    """Lazy Adagrad is exact (a zero gradient changes nothing): the sparse
    row path and the dense jax.grad path train the same model."""
    x, Y = corpus(seed=1)
    kw = dict(opt_name='adagrad', opt_learning_rate=0.3)
    dense = fit(x, Y, options(update_path='dense', **kw)).params
    sparse = fit(x, Y, options(update_path='sparse', **kw)).params
    np.testing.assert_allclose(sparse.W, dense.W, atol=1e-5)
    np.testing.assert_allclose(sparse.b, dense.b, atol=1e-5)

  def test_learns_the_marker_features_and_reports_p_at_1(self):
    x, Y = corpus(n=200, seed=2)
    r = fit(x, Y, options(epochs=8, opt_learning_rate=4.0), val_x=x, val_y=Y)
    z = scoring.predict_logits(r.params, x)
    proba = scoring.predict_proba(r.params, x, loss='sigmoid')
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-z)), rtol=1e-5)
    # Every label's own marker weighs most in its template.
    np.testing.assert_array_equal(r.params.W.argmax(0), np.arange(C))
    self.assertGreater(np.mean((proba >= 0.5) == (Y > 0)), 0.9)
    # The history's accuracy is P@1 and its loss the mean summed BCE.
    last = r.history[-1]
    self.assertAlmostEqual(last['val_accuracy'], precision_at_1(z, Y))
    want_loss = float(jnp.mean(losses.sigmoid_nll_from_logits(
        jnp.asarray(z), jnp.asarray(Y))))
    self.assertAlmostEqual(last['val_loss'], want_loss, places=5)

  def test_sweep_trains_the_sigmoid_loss(self):
    x, Y = corpus(seed=3)
    optimizer, training = options(epochs=2)
    result = hyper_sweep.sweep(x, Y, C, learning_rates=[0.5, 2.0],
                               l2s=[0.0], val_x=x, val_y=Y,
                               optimizer=optimizer, training=training)
    self.assertLen(result.grid, 2)
    alone = fit(x, Y, options(epochs=2, opt_learning_rate=result.best_lr))
    np.testing.assert_allclose(result.params.W, alone.params.W, atol=1e-5)

  def test_label_and_loss_mismatches_are_refused(self):
    x, Y = corpus(n=8)
    with self.assertRaisesRegex(ValueError, "train.loss='sigmoid'.*multi-hot"):
      fit(x, Y.argmax(-1).astype(np.int32), options())
    with self.assertRaisesRegex(ValueError, "need train.loss='sigmoid'"):
      fit(x, Y, options(loss='softmax'))
    bad = Y.astype(np.int32)
    bad[3, 2] = 2
    with self.assertRaisesRegex(ValueError, r'train_y: .*0 or 1.*\[3, 2\]'):
      fit(x, bad, options())
    with self.assertRaisesRegex(ValueError, r'train_y: .*\[8, 4\]'):
      fit(x, Y[:, :3], options())
    with self.assertRaisesRegex(ConfigError, r'^train\.class_weight'):
      options(class_weight='balanced')
    with self.assertRaisesRegex(ConfigError, r'^train\.loss'):
      options(loss='no_such_loss')


if __name__ == '__main__':
  absltest.main()
