"""The training engine against a plain dense reference written here."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from typing import NamedTuple

from linjax.core import losses
from linjax.core import model
from linjax.core import per_example
from linjax.core.errors import ConfigError
from linjax.core.features import SparseFeatures
from linjax.engine import chunk_program
from linjax.engine import packing
from linjax.engine import scoring
from linjax.engine import training as train
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.engine.step_order import batch_order
from linjax.text import csr

F, C = 60, 3


def corpus(n=48, seed=0, num_features=F, max_len=9):
  """Random docs, each with its class's marker feature; L2-normalised."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, C, n)
  rows = []
  for i in range(n):
    ids = np.unique(np.append(rng.integers(C, num_features,
                                           rng.integers(1, max_len)), y[i]))
    w = rng.uniform(0.5, 2.0, ids.size)
    rows.append((ids, w / np.linalg.norm(w)))
  return csr.from_rows(rows, num_features), y.astype(np.int32)


class Options(NamedTuple):
  optimizer: OptimizerOptions
  training: TrainOptions


def config(**kw) -> Options:
  """Small-problem options; ``section__name=value`` overrides a field."""
  # The data's rules (docs_per_step, max_steps) off: these tests pin the
  # step's shape and the passes (tests/test_step_budget.py tests the rules).
  sections = dict(optimizer=dict(learning_rate=0.5, schedule='linear'),
                  train=dict(batch_size=4, token_budget=24, epochs=3,
                             docs_per_step=0, max_steps=0))
  for key, value in kw.items():
    section, name = key.split('__')
    sections[section][name] = value
  return Options(OptimizerOptions(**sections['optimizer']),
                 TrainOptions(**sections['train']))


def fit(x, y, opts: Options, **kwargs):
  return train.fit(x, y, C, optimizer=opts.optimizer, training=opts.training,
                   **kwargs)


def reference_sgd(x, y, cfg, weights=None):
  """Hand-rolled SGD: jax.grad over full Params, the engine's batches.

  With ``weights``, each batch's loss is the weighted sum of its documents'
  NLLs over the number of its documents (weight 0 included).
  """
  tc, oc = cfg.training, cfg.optimizer
  weights = np.ones(len(y)) if weights is None else np.asarray(weights)
  packed = packing.pack(x, y, token_budget=tc.token_budget,
                        max_docs=tc.batch_size, seed=tc.seed, dedupe=False)
  dense = x.to_dense()
  steps, total = packed.num_steps, packed.num_steps * tc.epochs
  params = model.Params(jnp.zeros((F, C)), jnp.zeros(C))

  def objective(p, xb, yb, wb):
    nll = losses.per_example_loss(p, xb, yb)
    return (jnp.sum(wb * nll) / wb.shape[0] +
            losses.l2_penalty(p, tc.l2))

  grad = jax.jit(jax.grad(objective))
  t = 0
  for epoch in range(tc.epochs):
    for g in np.asarray(batch_order(tc.seed, epoch, steps)):
      docs = packed.doc_index[g].reshape(-1)
      docs = docs[docs >= 0]
      lr = oc.learning_rate * (
          1.0 - t / total if oc.schedule == 'linear' else 1.0)
      d = grad(params, jnp.asarray(dense[docs]), jnp.asarray(y[docs]),
               jnp.asarray(weights[docs], jnp.float32))
      params = model.Params(
          params.W - lr * (d.W + oc.weight_decay * params.W),
          params.b - lr * d.b)
      t += 1
  return params


class PackingTest(absltest.TestCase):

  def test_every_entry_once_and_long_docs_kept(self):
    x, y = corpus(n=30)
    long_doc = (np.arange(C, C + 40), np.ones(40))   # 40 entries > budget
    x = csr.from_rows([(x.ids[x.indptr[i]:x.indptr[i + 1]],
                        x.weights[x.indptr[i]:x.indptr[i + 1]])
                       for i in range(x.num_docs)] + [long_doc], F)
    y = np.append(y, 1)
    p = packing.pack(x, y, token_budget=16, max_docs=4, dedupe=True)
    self.assertGreaterEqual(p.token_budget, 40)
    docs = p.doc_index[p.doc_index >= 0]
    np.testing.assert_array_equal(np.sort(docs), np.arange(x.num_docs))
    # The bag of every document is rebuilt exactly from the packed slots.
    rebuilt = np.zeros((x.num_docs, F + 1))
    for g in range(p.num_steps):
      ids = p.uids[g, 0][p.slot[g, 0]]
      seg = p.seg[g, 0]
      real = seg < 4
      np.add.at(rebuilt, (p.doc_index[g, 0][seg[real]], ids[real]),
                p.weights[g, 0][real])
    np.testing.assert_allclose(rebuilt[:, :F], x.to_dense(), rtol=1e-6)
    np.testing.assert_array_equal(p.labels[p.doc_index >= 0], y[docs])
    # uids are unique per sub-batch apart from the padding row F.
    for row in p.uids.reshape(-1, p.uids.shape[-1]):
      real = row[row < F]
      self.assertEqual(real.size, np.unique(real).size)

  def test_order_is_a_permutation_per_epoch(self):
    a = np.asarray(batch_order(0, 0, 50))
    b = np.asarray(batch_order(0, 1, 50))
    np.testing.assert_array_equal(np.sort(a), np.arange(50))
    self.assertFalse(np.array_equal(a, b))


class FitTest(parameterized.TestCase):

  @parameterized.parameters(
      ('sparse', 0.0, 0.0), ('sparse', 0.01, 0.0), ('sparse', 0.0, 0.05),
      ('sparse', 0.01, 0.05), ('dense', 0.01, 0.05))
  def test_sgd_matches_dense_reference(self, update, l2, weight_decay):
    x, y = corpus()
    cfg = config(train__update_path=update, train__l2=l2,
                 optimizer__weight_decay=weight_decay)
    got = fit(x, y, cfg)
    self.assertEqual(got.update, update)
    want = reference_sgd(x, y, cfg)
    np.testing.assert_allclose(got.params.W, want.W, atol=2e-6)
    np.testing.assert_allclose(got.params.b, want.b, atol=2e-6)

  @parameterized.parameters('sparse', 'dense')
  def test_sample_weights_match_weighted_reference(self, update):
    x, y = corpus()
    w = np.random.default_rng(8).uniform(0.0, 3.0, len(y))
    w[::7] = 0.0   # weight 0: no loss, but counts in the batch mean
    cfg = config(train__update_path=update, train__l2=0.01)
    got = fit(x, y, cfg, sample_weight=w)
    want = reference_sgd(x, y, cfg, weights=w)
    np.testing.assert_allclose(got.params.W, want.W, atol=2e-6)
    np.testing.assert_allclose(got.params.b, want.b, atol=2e-6)
    plain = fit(x, y, cfg).params
    self.assertGreater(np.abs(plain.W - got.params.W).max(), 1e-3)

  def test_balanced_class_weight_is_scikit_learns(self):
    from sklearn.utils.class_weight import compute_class_weight
    x, y = corpus(seed=9)
    y = np.where(y == 2, 0, y).astype(np.int32)   # imbalanced: 0 doubles
    per_class = compute_class_weight('balanced', classes=np.unique(y), y=y)
    balanced = fit(x, y, config(train__class_weight='balanced')).params
    weighted = fit(x, y, config(), sample_weight=per_class[y]).params
    np.testing.assert_allclose(balanced.W, weighted.W, atol=1e-6)
    with self.assertRaisesRegex(ValueError, 'sample_weight'):
      fit(x, y, config(), sample_weight=-np.ones(len(y)))
    with self.assertRaisesRegex(ValueError, 'sample_weight'):
      fit(x, y, config(), sample_weight=np.ones(3))

  def test_scale_underflow_is_absorbed(self):
    x, y = corpus()
    # Constant lr 0.9 and l2 0.5 shrink W by 0.1 per step: the global scale
    # would underflow within the run, so V absorbs it every few steps.
    cfg = config(train__update_path='sparse', train__l2=0.5,
                 optimizer__learning_rate=0.9, optimizer__schedule='constant')
    got = fit(x, y, cfg)
    want = reference_sgd(x, y, cfg)
    np.testing.assert_allclose(got.params.W, want.W, atol=2e-6)
    self.assertGreater(np.abs(want.W).max(), 1e-3)

  @parameterized.parameters('adagrad', 'sgd_momentum', 'adam')
  def test_stateful_sparse_vs_dense(self, name):
    x, y = corpus()
    kw = dict(optimizer__name=name, optimizer__learning_rate=0.1)
    if name == 'sgd_momentum':
      kw.update(optimizer__name='sgd', optimizer__momentum=0.9)
    dense = fit(x, y, config(train__update_path='dense', **kw)).params
    sparse = fit(x, y, config(train__update_path='sparse', **kw)).params
    if name == 'adagrad':   # documented exact: zero gradient, zero change
      np.testing.assert_allclose(sparse.W, dense.W, atol=1e-5)
    else:                   # documented lazy: same model, not the same bits
      self.assertGreater(np.abs(sparse.W - dense.W).max(), 1e-4)
      acc = [scoring.evaluate(p, x, y)['accuracy'] for p in (sparse, dense)]
      self.assertGreater(min(acc), 0.9)
    np.testing.assert_allclose(sparse.b, dense.b, atol=0.05)

  @parameterized.parameters('sgd_momentum', 'adam')
  def test_lazy_stateful_matches_a_lazy_reference(self, name):
    """Lazy momentum/Adam (documented: only the rows a step touches move,
    with per-row state; the step count is global) against a reference
    written here, on labels no single feature separates."""
    x, _ = corpus(seed=11)
    y = np.random.default_rng(12).integers(0, C, x.num_docs).astype(np.int32)
    kw = dict(optimizer__name=name, optimizer__learning_rate=0.05)
    if name == 'sgd_momentum':
      kw.update(optimizer__name='sgd', optimizer__momentum=0.9)
    cfg = config(train__update_path='sparse', **kw)
    got = fit(x, y, cfg).params
    tc, oc = cfg.training, cfg.optimizer
    packed = packing.pack(x, y, token_budget=tc.token_budget,
                          max_docs=tc.batch_size, seed=tc.seed, dedupe=True)
    dense = x.to_dense()
    total = packed.num_steps * tc.epochs
    W, b = np.zeros((F, C)), np.zeros(C)
    m = dict(W=np.zeros((F, C)), b=np.zeros(C))
    v = dict(W=np.zeros((F, C)), b=np.zeros(C))
    grad = jax.jit(jax.grad(losses.softmax_loss))
    t = 0
    for epoch in range(tc.epochs):
      for g in np.asarray(batch_order(tc.seed, epoch, packed.num_steps)):
        docs = packed.doc_index[g].reshape(-1)
        docs = docs[docs >= 0]
        rows = np.unique(np.concatenate(
            [x.ids[x.indptr[d]:x.indptr[d + 1]] for d in docs]))
        d = grad(model.Params(jnp.asarray(W, jnp.float32),
                              jnp.asarray(b, jnp.float32)),
                 jnp.asarray(dense[docs]), jnp.asarray(y[docs]))
        lr = oc.learning_rate * (1.0 - t / total)
        t += 1
        for key, full, gk, sel in (('W', W, np.asarray(d.W), rows),
                                   ('b', b, np.asarray(d.b), slice(None))):
          gk = gk[sel]
          if name == 'adam':   # optax.scale_by_adam, bias-corrected
            m[key][sel] = 0.9 * m[key][sel] + 0.1 * gk
            v[key][sel] = 0.999 * v[key][sel] + 0.001 * gk ** 2
            step = (m[key][sel] / (1 - 0.9 ** t)) / (
                np.sqrt(v[key][sel] / (1 - 0.999 ** t)) + 1e-8)
          else:                # optax.trace: m = g + 0.9 m
            m[key][sel] = gk + 0.9 * m[key][sel]
            step = m[key][sel]
          full[sel] -= lr * step
    self.assertGreater(np.abs(W).max(), 0.05)   # it learned something
    np.testing.assert_allclose(got.W, W, atol=1e-4)
    np.testing.assert_allclose(got.b, b, atol=1e-4)

  def test_lazy_l2_shrinks_touched_rows_only(self):
    x, y = corpus()
    cfg = config(optimizer__name='adagrad', train__update_path='sparse',
                 train__l2=0.5, train__epochs=1)
    unused = np.setdiff1d(np.arange(F), x.ids)
    init = model.Params(np.ones((F, C), np.float32), np.zeros(C, np.float32))
    p = fit(x, y, cfg, init=init).params
    np.testing.assert_array_equal(p.W[unused], 1.0)
    self.assertLess(p.W[np.unique(x.ids)].mean(), 0.9)

  def test_no_retrace_between_epochs(self):
    x, y = corpus(seed=3)
    chunk_program.clear_cache()
    before = chunk_program.TRACE_COUNTS['epoch']
    fit(x, y, config(train__epochs=4, train__update_path='sparse'))
    self.assertEqual(chunk_program.TRACE_COUNTS['epoch'] - before, 1)
    fit(x, y, config(train__epochs=4, train__update_path='sparse'))
    self.assertEqual(chunk_program.TRACE_COUNTS['epoch'] - before, 1)

  def test_deterministic(self):
    x, y = corpus(seed=4)
    cfg = config(optimizer__name='adam', optimizer__learning_rate=0.05)
    a = fit(x, y, cfg).params
    b = fit(x, y, cfg).params
    np.testing.assert_array_equal(a.W, b.W)
    cfg = config(optimizer__name='adam', optimizer__learning_rate=0.05,
                 train__seed=1)
    c = fit(x, y, cfg).params
    self.assertFalse(np.array_equal(a.W, c.W))

  def test_history_and_callback(self):
    x, y = corpus(seed=5)
    seen = []
    r = fit(x, y, config(), val_x=x, val_y=y, callback=seen.append)
    self.assertEqual(seen, r.history)
    self.assertEqual([h['epoch'] for h in r.history], [1, 2, 3])
    for h in r.history:
      self.assertGreater(h['tokens_per_s'], 0)
      self.assertGreater(h['seconds'], 0)
    final = scoring.evaluate(r.params, x, y)
    self.assertAlmostEqual(final['accuracy'], r.history[-1]['val_accuracy'])
    self.assertAlmostEqual(final['loss'], r.history[-1]['val_loss'], places=5)

  def test_early_stopping_restores_best(self):
    x, y = corpus(seed=6)
    y_val = (y + 1) % C   # learning the training labels hurts these
    r = fit(x, y, config(train__epochs=10, train__patience=2,
                                  train__metric='loss'),
                  val_x=x, val_y=y_val)
    self.assertEqual(r.best_epoch, 1)
    self.assertEqual(r.epochs_run, 3)
    self.assertAlmostEqual(scoring.evaluate(r.params, x, y_val)['loss'],
                           r.history[0]['val_loss'], places=5)

  def test_divergence_names_first_bad_step(self):
    x, y = corpus(seed=7)
    cfg = config(train__epochs=2)
    bad_doc = 17
    x.weights[x.indptr[bad_doc]] = np.nan
    p = packing.pack(x, y, token_budget=24, max_docs=4, seed=0, dedupe=False)
    bad_step = int(np.nonzero((p.doc_index == bad_doc).any(axis=(1, 2)))[0][0])
    order = list(np.asarray(batch_order(0, 0, p.num_steps)))
    with self.assertRaisesRegex(
        train.TrainingDiverged,
        rf'epoch 1, step {order.index(bad_step) + 1}:.*smaller learning'):
      fit(x, y, cfg)

  @parameterized.parameters(
      ('train.batch_size', dict(train__batch_size=0)),
      ('train.epochs', dict(train__epochs=-1)),
      ('train.patience', dict(train__patience=-1)),
      ('train.l2', dict(train__l2=-0.1)),
      ('train.update_path', dict(train__update_path='fast')),
      ('train.metric', dict(train__metric='f1')),
      ('optimizer.learning_rate', dict(optimizer__learning_rate=-1.0)),
      ('optimizer.name', dict(optimizer__name='lbfgs')),
      ('optimizer.schedule', dict(optimizer__schedule='step')))
  def test_config_errors(self, key, kw):
    with self.assertRaisesRegex(ConfigError, '^' + key.replace('.', r'\.')):
      config(**kw)


class PredictTest(chex.TestCase):

  def test_predict_matches_dense_logits(self):
    x, _ = corpus(n=10)
    rng = np.random.default_rng(0)
    p = model.Params(rng.normal(size=(F, C)).astype(np.float32),
                     rng.normal(size=C).astype(np.float32))
    want = x.to_dense() @ p.W + p.b
    np.testing.assert_allclose(scoring.predict_logits(p, x, batch_size=4), want,
                               rtol=1e-5, atol=1e-5)
    proba = scoring.predict_proba(p, x)
    np.testing.assert_allclose(proba.sum(-1), 1.0, rtol=1e-5)

  def test_host_and_device_prediction_agree_with_empty_documents(self):
    rng = np.random.default_rng(2)
    lengths = [3, 0, 5, 0, 0, 2, 7, 1, 0]
    x = csr.from_rows([(rng.choice(F, k, replace=False), rng.uniform(size=k))
                       for k in lengths], F)
    W = rng.normal(size=(F, C)).astype(np.float32)
    b = rng.normal(size=C).astype(np.float32)
    want = x.to_dense().astype(np.float64) @ W + b   # empty rows score b
    for batch_size in (1, 2, 4, 100):
      host = scoring.predict_logits(model.Params(W, b), x, batch_size)
      np.testing.assert_allclose(host, want, rtol=1e-5, atol=1e-5)
    device = scoring.predict_logits(
        model.Params(jnp.asarray(W), jnp.asarray(b)), x, batch_size=4)
    np.testing.assert_allclose(device, want, rtol=1e-5, atol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_per_example_grads(self):
    rng = np.random.default_rng(1)
    p = model.Params(jnp.asarray(rng.normal(size=(8, C)), jnp.float32),
                     jnp.zeros(C))
    ids = jnp.array([[0, 3, 5], [1, 1, 7]])
    w = jnp.array([[1.0, 0.5, 0.0], [2.0, 1.0, 1.0]])
    y = jnp.array([2, 0])
    g = self.variant(per_example.per_example_grads)(p, SparseFeatures(ids, w), y)
    chex.assert_shape(g.W, (2, 8, C))
    dense = np.zeros((2, 8))
    np.add.at(dense, (np.array([[0] * 3, [1] * 3]), np.asarray(ids)),
              np.asarray(w))
    for i in range(2):   # x_i^T (p_i - onehot(y_i)), by hand
      z = dense[i] @ np.asarray(p.W)
      prob = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
      r = prob - np.eye(C)[int(y[i])]
      np.testing.assert_allclose(g.W[i], np.outer(dense[i], r), atol=1e-5)
      np.testing.assert_allclose(g.b[i], r, atol=1e-6)
    clipped = per_example.clipped_mean_grad(p, SparseFeatures(ids, w), y, 0.1)
    norms = [np.sqrt(np.sum(np.asarray(g.W[i])**2) + np.sum(
        np.asarray(g.b[i])**2)) for i in range(2)]
    want = sum(np.asarray(g.W[i]) * min(1, 0.1 / norms[i])
               for i in range(2)) / 2
    np.testing.assert_allclose(clipped.W, want, atol=1e-6)


if __name__ == '__main__':
  absltest.main()
