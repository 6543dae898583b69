"""Gradient tests: the lecture's worked examples and three-way agreement."""

import functools

from absl.testing import parameterized
import chex
from hypothesis import given, settings, strategies as st
import jax
import jax.numpy as jnp
import numpy as np

import linjax
from linjax.core import gradients
from linjax.core import losses


class LectureExamplesTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_drug_trials_document(self):
    """'too many drug trials, too few patients': x = (drug, patients, baseball)
    = (1, 1, 0); probabilities (health, sports, science) = (0.2, 0.5, 0.3);
    target health. The gradient columns are -0.8x, 0.5x and 0.3x."""
    x = jnp.array([[1.0, 1.0, 0.0]])
    y = jnp.array([0])
    # Zero weights and b = log p make softmax(x W + b) exactly p.
    params = linjax.Params(W=jnp.zeros((3, 3)),
                           b=jnp.log(jnp.array([0.2, 0.5, 0.3])))
    expected_W = np.array([[-0.8, 0.5, 0.3], [-0.8, 0.5, 0.3], [0, 0, 0]])
    manual = self.variant(linjax.manual_grad)(params, x, y)
    auto = self.variant(jax.grad(linjax.objective))(params, x, y)
    np.testing.assert_allclose(manual.W, expected_W, atol=1e-6)
    np.testing.assert_allclose(auto.W, expected_W, atol=1e-6)
    np.testing.assert_allclose(manual.b, [-0.8, 0.5, 0.3], atol=1e-6)
    # The same document as SparseFeatures (ids 0 and 1, one slot padding).
    sparse = linjax.SparseFeatures(jnp.array([[0, 1, 2]]),
                                   jnp.array([[1.0, 1.0, 0.0]]))
    np.testing.assert_allclose(
        self.variant(linjax.manual_grad)(params, sparse, y).W, expected_W,
        atol=1e-6)
    # One SGD step with rate 1 adds 0.8x to health and removes 0.5x, 0.3x.
    updated = params.W - manual.W
    np.testing.assert_allclose(updated[0], [0.8, -0.5, -0.3], atol=1e-6)

  def test_one_dimensional_quadratic(self):
    """Loss w^2: slope 2w; positive slope means decrease w."""
    with jax.enable_x64(True):
      fn = lambda w: jnp.sum(w**2)
      for w0 in (-3.0, -0.5, 0.0, 1.5, 4.0):
        w = jnp.array([w0], jnp.float64)
        numeric = linjax.numerical_grad(fn, w)
        np.testing.assert_allclose(numeric, [2 * w0], atol=1e-8)
        np.testing.assert_allclose(jax.grad(fn)(w), [2 * w0])
        stepped = w - 0.1 * numeric
        if w0 != 0:
          # The sign rule: moving against the slope lowers the loss.
          self.assertLess(float(fn(stepped)), float(fn(w)))
          self.assertEqual(np.sign(numeric[0]), np.sign(w0))

  def test_two_dimensional_bowl_and_lecture_table(self):
    """Loss w1^2 + w2^2 at (1, -2): slopes (2, -4); the table's forward
    differences (loss after +h minus before, over h) approach them."""
    with jax.enable_x64(True):
      fn = lambda w: w[0]**2 + w[1]**2
      w = jnp.array([1.0, -2.0], jnp.float64)
      np.testing.assert_allclose(linjax.numerical_grad(fn, w), [2.0, -4.0],
                                 atol=1e-8)
      table = gradients.slope_table(fn, w, h=1e-4)
      self.assertEqual([r['coordinate'] for r in table], ['[0]', '[1]'])
      for row, exact in zip(table, (2.0, -4.0)):
        self.assertEqual(row['loss_before'], 5.0)
        # Forward difference error is h for this quadratic.
        self.assertAlmostEqual(row['slope'], exact + 1e-4, places=6)
      # Gradient descent on the bowl goes downhill to the minimum at 0.
      for _ in range(20):
        w = w - 0.4 * linjax.numerical_grad(fn, w)
      self.assertLess(float(fn(w)), 1e-15)


def _random_problem(seed, n, num_features, num_classes, sparse, length=5):
  rng = np.random.default_rng(seed)
  params = linjax.Params(
      W=jnp.asarray(rng.normal(size=(num_features, num_classes)) * 0.5,
                    jnp.float64),
      b=jnp.asarray(rng.normal(size=num_classes), jnp.float64))
  y = jnp.asarray(rng.integers(0, num_classes, n), jnp.int32)
  if sparse:
    ids = rng.integers(0, num_features, (n, length)).astype(np.int32)
    weights = rng.uniform(size=(n, length)) * (rng.uniform(size=(n, length))
                                                > 0.3)
    x = linjax.SparseFeatures(jnp.asarray(ids), jnp.asarray(weights,
                                                           jnp.float64))
  else:
    x = jnp.asarray(rng.normal(size=(n, num_features)), jnp.float64)
  return params, x, y


class ThreeWayAgreementTest(chex.TestCase):

  @settings(max_examples=8, deadline=None)
  @given(seed=st.integers(0, 2**16), n=st.integers(1, 12),
         num_features=st.integers(1, 9), num_classes=st.integers(2, 5),
         sparse=st.booleans(), l2=st.sampled_from([0.0, 0.01, 1.0]))
  def test_random_problems(self, seed, n, num_features, num_classes, sparse,
                           l2):
    with jax.enable_x64(True):
      params, x, y = _random_problem(seed, n, num_features, num_classes,
                                     sparse)
      auto = jax.grad(linjax.objective)(params, x, y, l2)
      manual = linjax.manual_grad(params, x, y, l2)
      numeric = linjax.numerical_grad(
          lambda p: linjax.objective(p, x, y, l2), params)
      for got in (manual, numeric):
        for a, b in zip(got, auto):
          err = np.max(np.abs(np.asarray(a) - np.asarray(b)))
          self.assertLess(err / max(np.max(np.abs(np.asarray(b))), 1e-12),
                          1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_manual_grad_jit_and_dense_sparse_equal(self):
    with jax.enable_x64(True):
      params, sparse_x, y = _random_problem(3, 10, 30, 4, sparse=True)
      dense_x = linjax.featurize(*sparse_x, 30)
      from_sparse = self.variant(linjax.manual_grad)(params, sparse_x, y, 0.1)
      from_dense = self.variant(linjax.manual_grad)(params, dense_x, y, 0.1)
      chex.assert_trees_all_close(from_sparse, from_dense, rtol=1e-12,
                                  atol=1e-14)

  @parameterized.product(sparse=[False, True],
                         shape=[(4, 3, 2), (40, 50, 5), (64, 500, 8)])
  def test_check_grad_passes_on_several_sizes(self, shape, sparse):
    n, num_features, num_classes = shape
    with jax.enable_x64(True):
      params, x, y = _random_problem(7, n, num_features, num_classes, sparse)
    report = linjax.check_grad(params, x, y, l2=0.05)
    assert report.passed, report.format()
    assert report.num_params == num_features * num_classes + num_classes
    for method in ('manual', 'numerical'):
      for leaf in ('W', 'b'):
        assert report.max_rel_error[method][leaf] < 1e-6

  def test_check_grad_casts_float32_inputs_and_prints_table(self):
    params = linjax.init_params(jax.random.PRNGKey(0), 3, 3, scale=0.5)
    report = linjax.check_grad(params, jnp.ones((2, 3)), jnp.array([0, 2]),
                               table_rows=4)
    assert report.passed
    text = report.format()
    assert 'PASS' in text and 'loss after +h' in text
    assert len(report.table) == 4

  @parameterized.parameters(('W', (2, 1)), ('b', (0,)))
  def test_check_grad_reports_a_wrong_manual_gradient(self, leaf, index):
    """A hand-written gradient off by delta at one coordinate fails the check,
    and the report's errors for that leaf are exactly delta (absolute) and
    delta / max|true gradient| (relative); the other leaf still agrees."""
    delta = 1e-3
    with jax.enable_x64(True):
      params, x, y = _random_problem(1, 6, 5, 3, sparse=False)
      # The true gradient, independently: X^T (softmax - onehot) / N in numpy.
      xn, yn = np.asarray(x), np.asarray(y)
      z = xn @ np.asarray(params.W) + np.asarray(params.b)
      p = np.exp(z - z.max(1, keepdims=True))
      p /= p.sum(1, keepdims=True)
      residual = (p - np.eye(3)[yn]) / len(yn)
      true = {'W': xn.T @ residual, 'b': residual.sum(0)}

    def wrong(params, x, y, l2):
      grad = linjax.manual_grad(params, x, y, l2)
      return grad._replace(**{leaf: getattr(grad, leaf).at[index].add(delta)})

    report = linjax.check_grad(params, x, y, manual_fn=wrong)
    assert not report.passed, report.format()
    assert 'FAIL' in report.format()
    self.assertAlmostEqual(report.max_abs_error['manual'][leaf], delta,
                           delta=1e-12)
    self.assertAlmostEqual(report.max_rel_error['manual'][leaf],
                           delta / np.max(np.abs(true[leaf])), delta=1e-10)
    other = 'b' if leaf == 'W' else 'W'
    self.assertLess(report.max_rel_error['manual'][other], 1e-12)
    for error in report.max_rel_error['numerical'].values():
      self.assertLess(error, 1e-6)
    # The same wrong gradient passes only with a tolerance above its error.
    loose = linjax.check_grad(params, x, y, manual_fn=wrong, tolerance=1.0)
    assert loose.passed

  def test_check_grad_reports_a_coarse_finite_difference(self):
    """With a huge step eps the central difference is off; the report's
    numerical error equals that of a central difference written here in
    numpy, coordinate by coordinate, and the check fails."""
    eps = 0.5
    with jax.enable_x64(True):
      params, x, y = _random_problem(2, 4, 2, 2, sparse=False)
      xn, yn = np.asarray(x), np.asarray(y)

      def loss(w, b):
        z = xn @ w + b
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(4), yn]))

      w0, b0 = np.asarray(params.W), np.asarray(params.b)
      numeric = {'W': np.zeros_like(w0), 'b': np.zeros_like(b0)}
      for index in np.ndindex(*w0.shape):
        step = np.zeros_like(w0)
        step[index] = eps
        numeric['W'][index] = (loss(w0 + step, b0) -
                               loss(w0 - step, b0)) / (2 * eps)
      for index in np.ndindex(*b0.shape):
        step = np.zeros_like(b0)
        step[index] = eps
        numeric['b'][index] = (loss(w0, b0 + step) -
                               loss(w0, b0 - step)) / (2 * eps)
      exact = jax.grad(linjax.objective)(params, x, y)
    report = linjax.check_grad(params, x, y, eps=eps)
    assert not report.passed, report.format()
    for leaf in ('W', 'b'):
      want = np.max(np.abs(numeric[leaf] - np.asarray(getattr(exact, leaf))))
      self.assertGreater(want, 1e-4)  # the step really is too coarse
      self.assertAlmostEqual(report.max_abs_error['numerical'][leaf], want,
                             delta=1e-9)
      self.assertLess(report.max_rel_error['manual'][leaf], 1e-12)

  def test_numerical_grad_on_nested_pytree_with_small_chunks(self):
    with jax.enable_x64(True):
      tree = {'a': jnp.arange(7.0, dtype=jnp.float64),
              'b': jnp.ones((2, 3), jnp.float64)}
      fn = lambda t: jnp.sum(jnp.sin(t['a'])) + jnp.sum(t['b']**3)
      got = linjax.numerical_grad(fn, tree, chunk_size=4)
      np.testing.assert_allclose(got['a'], np.cos(np.arange(7.0)), atol=1e-9)
      np.testing.assert_allclose(got['b'], 3.0 * np.ones((2, 3)), atol=1e-9)


def _multi_hot(seed, n, num_classes):
  rng = np.random.default_rng(seed + 1)
  return jnp.asarray(rng.uniform(size=(n, num_classes)) < 0.4, jnp.int32)


class SigmoidGradientTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_tagged_document_by_hand(self):
    """The drug-trials document again, now with three TAGS instead of one
    class: x = (drug, patients, baseball) = (1, 1, 0), tags (health, sports,
    science) with sigmoid probabilities (0.2, 0.5, 0.3) and targets
    (1, 0, 1). Each tag is its own yes/no question: its column of the
    gradient is (p_c - Y_c) x = -0.8x, 0.5x, -0.7x (not -0.8x, 0.5x, 0.3x as
    with softmax, where the targets compete), and the loss is
    -log 0.2 - log(1 - 0.5) - log 0.3."""
    x = jnp.array([[1.0, 1.0, 0.0]])
    Y = jnp.array([[1, 0, 1]])
    p = np.array([0.2, 0.5, 0.3])
    # Zero weights and b = logit(p) make sigmoid(x W + b) exactly p.
    params = linjax.Params(W=jnp.zeros((3, 3)),
                           b=jnp.asarray(np.log(p / (1 - p)), jnp.float32))
    expected_W = np.array([[-0.8, 0.5, -0.7], [-0.8, 0.5, -0.7], [0, 0, 0]])
    manual = self.variant(functools.partial(linjax.manual_grad,
                                            loss='sigmoid'))(params, x, Y)
    auto = self.variant(jax.grad(functools.partial(
        linjax.objective, loss='sigmoid')))(params, x, Y)
    np.testing.assert_allclose(manual.W, expected_W, atol=1e-6)
    np.testing.assert_allclose(auto.W, expected_W, atol=1e-6)
    np.testing.assert_allclose(manual.b, [-0.8, 0.5, -0.7], atol=1e-6)
    np.testing.assert_allclose(
        losses.sigmoid_loss(params, x, Y),
        -np.log(0.2) - np.log(0.5) - np.log(0.3), rtol=1e-6)
    # One SGD step with rate 1 raises health and science, lowers sports.
    updated = params.W - manual.W
    np.testing.assert_allclose(updated[1], [0.8, -0.5, 0.7], atol=1e-6)
    # The same document as SparseFeatures (a padding slot of weight 0).
    sparse = linjax.SparseFeatures(jnp.array([[0, 1, 2]]),
                                   jnp.array([[1.0, 1.0, 0.0]]))
    np.testing.assert_allclose(
        linjax.manual_grad(params, sparse, Y, loss='sigmoid').W, expected_W,
        atol=1e-6)

  @settings(max_examples=8, deadline=None)
  @given(seed=st.integers(0, 2**16), n=st.integers(1, 12),
         num_features=st.integers(1, 9), num_classes=st.integers(2, 5),
         sparse=st.booleans(), l2=st.sampled_from([0.0, 0.01, 1.0]))
  def test_random_problems_three_ways(self, seed, n, num_features,
                                      num_classes, sparse, l2):
    with jax.enable_x64(True):
      params, x, _ = _random_problem(seed, n, num_features, num_classes,
                                     sparse)
      Y = _multi_hot(seed, n, num_classes)
      fn = lambda p: linjax.objective(p, x, Y, l2, loss='sigmoid')
      auto = jax.grad(fn)(params)
      manual = linjax.manual_grad(params, x, Y, l2, loss='sigmoid')
      numeric = linjax.numerical_grad(fn, params)
      for got in (manual, numeric):
        for a, b in zip(got, auto):
          err = np.max(np.abs(np.asarray(a) - np.asarray(b)))
          self.assertLess(err / max(np.max(np.abs(np.asarray(b))), 1e-12),
                          1e-6)

  def test_manual_grad_equals_numpy(self):
    """X^T (sigmoid(X W + b) - Y) / N + 2 l2 W, computed in numpy."""
    with jax.enable_x64(True):
      params, x, _ = _random_problem(5, 9, 6, 4, sparse=False)
      Y = _multi_hot(5, 9, 4)
      got = linjax.manual_grad(params, x, Y, 0.3, loss='sigmoid')
    xn, Yn = np.asarray(x), np.asarray(Y)
    z = xn @ np.asarray(params.W) + np.asarray(params.b)
    residual = (1 / (1 + np.exp(-z)) - Yn) / 9
    np.testing.assert_allclose(got.W, xn.T @ residual +
                               0.6 * np.asarray(params.W), rtol=1e-12)
    np.testing.assert_allclose(got.b, residual.sum(0), rtol=1e-12)

  @parameterized.product(sparse=[False, True],
                         shape=[(4, 3, 2), (40, 50, 5), (64, 500, 8)])
  def test_check_grad_passes(self, shape, sparse):
    n, num_features, num_classes = shape
    with jax.enable_x64(True):
      params, x, _ = _random_problem(7, n, num_features, num_classes, sparse)
      Y = _multi_hot(7, n, num_classes)
    report = linjax.check_grad(params, x, Y, l2=0.05, loss='sigmoid')
    assert report.passed, report.format()
    for method in ('manual', 'numerical'):
      for leaf in ('W', 'b'):
        assert report.max_rel_error[method][leaf] < 1e-6

  def test_check_grad_fails_the_softmax_gradient_on_the_sigmoid_loss(self):
    """The softmax gradient of the first label of each document is not the
    sigmoid loss's gradient: the check must say so."""
    with jax.enable_x64(True):
      params, x, _ = _random_problem(9, 8, 5, 3, sparse=False)
      Y = _multi_hot(9, 8, 3).at[:, 0].set(1)

    def softmax_of_first_label(params, x, Y, l2):
      return linjax.manual_grad(params, x, jnp.argmax(Y, -1), l2)

    report = linjax.check_grad(params, x, Y, loss='sigmoid',
                               manual_fn=softmax_of_first_label)
    assert not report.passed, report.format()
    self.assertGreater(report.max_rel_error['manual']['W'], 1e-2)
    for error in report.max_rel_error['numerical'].values():
      self.assertLess(error, 1e-6)


class EveryLossGradientTest(parameterized.TestCase):
  """`check_grad` and the runner's `run_gradcheck` for every loss of the
  table: jax.grad against finite differences, and against the hand-derived
  gradient where the loss has one."""

  @parameterized.parameters(*losses.BUILT_IN_NAMES)
  def test_check_grad(self, name):
    loss = losses.get_loss(name)
    with jax.enable_x64(True):
      params, x, y = _random_problem(3, 12, 9, 4, sparse=True)
      if loss.multi_label:
        y = _multi_hot(3, 12, 4)
    report = linjax.check_grad(params, x, y, l2=0.05, loss=name)
    assert report.passed, report.format()
    methods = set(report.max_rel_error)
    self.assertEqual(methods, {'numerical', 'manual'} if loss.hand_grad
                     else {'numerical'})
    # A wrong gradient fails: the loss's gradient doubled.
    doubled = lambda p, x, y, l2: jax.tree_util.tree_map(
        lambda g: 2 * g, jax.grad(linjax.objective)(p, x, y, l2, name))
    wrong = linjax.check_grad(params, x, y, l2=0.05, loss=name,
                              manual_fn=doubled)
    assert not wrong.passed

  @parameterized.parameters(*losses.BUILT_IN_NAMES)
  def test_runner_gradcheck(self, name):
    from linjax.cli import run_checks  # pylint: disable=g-import-not-at-top
    from linjax.text import csr  # pylint: disable=g-import-not-at-top
    loss = losses.get_loss(name)
    rng = np.random.default_rng(4)
    rows = [(np.unique(rng.integers(0, 30, 5)), rng.uniform(0.5, 1, 5))
            for _ in range(20)]
    rows = [(ids, w[:ids.size]) for ids, w in rows]
    x = csr.from_rows(rows, 30)
    y = (np.asarray(_multi_hot(4, 20, 4)) if loss.multi_label
         else rng.integers(0, 4, 20))
    report = run_checks.run_gradcheck(x, y, 4, 0.01, loss=name)
    assert report.passed, report.format()
    self.assertEqual('manual' in report.max_rel_error,
                     loss.hand_grad is not None)
