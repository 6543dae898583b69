"""Optimisers and schedules against values worked out by hand."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax.numpy as jnp
import numpy as np

from linjax.core import model
from linjax.core.errors import ConfigError
from linjax.engine import optimizers as optim
from linjax.engine.options import OptimizerOptions


def opt_config(**kw):
  return OptimizerOptions(**dict(
      dict(name='sgd', learning_rate=1.0, schedule='constant', momentum=0.0,
           warmup_fraction=0.1, decay_rate=0.1, weight_decay=0.0,
           clip_norm=0.0), **kw))


class ScheduleTest(parameterized.TestCase):

  @parameterized.parameters(
      ('constant', [(0, 2.0), (50, 2.0), (100, 2.0)]),
      ('linear', [(0, 2.0), (50, 1.0), (75, 0.5), (100, 0.0)]),
      ('exponential', [(0, 2.0), (50, 2.0 * 0.1**0.5), (100, 0.2)]),
      ('cosine', [(0, 2.0), (50, 1.0), (100, 0.0)]),
      # warmup 10 steps to 2.0, then cosine over the remaining 90 steps.
      ('warmup_cosine', [(0, 0.0), (5, 1.0), (10, 2.0), (55, 1.0),
                         (100, 0.0)]),
  )
  def test_values(self, kind, points):
    fn = optim.make_schedule(opt_config(schedule=kind, learning_rate=2.0),
                             total_steps=100)
    for step, want in points:
      self.assertAlmostEqual(float(fn(step)), want, places=5, msg=step)


class OptimizerTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.params = model.Params(jnp.array([[1.0, -2.0], [0.5, 0.0]]),
                               jnp.array([0.3, -0.3]))
    self.g1 = model.Params(jnp.array([[0.1, 0.2], [-0.3, 0.0]]),
                           jnp.array([0.5, -0.5]))
    self.g2 = model.Params(jnp.array([[0.2, -0.1], [0.0, 0.4]]),
                           jnp.array([-0.1, 0.1]))

  def two_steps(self, cfg):
    opt = optim.make_optimizer(cfg, total_steps=10)
    state = opt.init(self.params)
    p = self.params
    for g in (self.g1, self.g2):
      u, state = opt.update(g, state, p)
      p = model.Params(p.W + u.W, p.b + u.b)
    return p

  def test_sgd_momentum(self):
    p = self.two_steps(opt_config(learning_rate=0.5, momentum=0.9))
    # trace: m1 = g1, m2 = g2 + 0.9 g1; w2 = w0 - lr (m1 + m2).
    for name in ('W', 'b'):
      g1, g2 = getattr(self.g1, name), getattr(self.g2, name)
      want = getattr(self.params, name) - 0.5 * (g1 + g2 + 0.9 * g1)
      np.testing.assert_allclose(getattr(p, name), want, rtol=1e-6)

  def test_adagrad(self):
    p = self.two_steps(opt_config(name='adagrad', learning_rate=0.5))
    w, acc = np.asarray(self.params.W), np.full((2, 2), 0.1)
    for g in (self.g1.W, self.g2.W):
      g = np.asarray(g)
      acc = acc + g**2
      w = w - 0.5 * g / np.sqrt(acc + 1e-7)
    np.testing.assert_allclose(p.W, w, rtol=1e-5)

  def test_adam_first_step_is_sign(self):
    opt = optim.make_optimizer(opt_config(name='adam', learning_rate=0.1), 10)
    u, _ = opt.update(self.g1, opt.init(self.params), self.params)
    # bias-corrected m / sqrt(v) = g / |g| on the first step.
    np.testing.assert_allclose(u.W, -0.1 * np.sign(self.g1.W), atol=1e-5)

  def test_weight_decay_skips_bias(self):
    cfg = opt_config(learning_rate=0.5, weight_decay=0.1)
    opt = optim.make_optimizer(cfg, 10)
    u, _ = opt.update(self.g1, opt.init(self.params), self.params)
    np.testing.assert_allclose(
        u.W, -0.5 * (self.g1.W + 0.1 * self.params.W), rtol=1e-6)
    np.testing.assert_allclose(u.b, -0.5 * self.g1.b, rtol=1e-6)

  def test_clip_norm(self):
    opt = optim.make_optimizer(opt_config(clip_norm=0.1), 10)
    u, _ = opt.update(self.g1, opt.init(self.params), self.params)
    norm = np.sqrt(0.01 + 0.04 + 0.09 + 0.25 + 0.25)   # = 0.8
    np.testing.assert_allclose(u.W, -self.g1.W * 0.1 / norm, rtol=1e-5)

  @parameterized.parameters(
      ('name', 'rmsprop'), ('schedule', 'step'), ('learning_rate', -1.0),
      ('learning_rate', 0.0), ('momentum', 1.0), ('decay_rate', 0.0),
      ('weight_decay', -0.1), ('clip_norm', -1.0), ('warmup_fraction', 1.5),
      ('learning_rate', 'fast'))
  def test_bad_values_name_the_key(self, key, value):
    with self.assertRaisesRegex(ConfigError, f'^optimizer.{key} must'):
      opt_config(**{key: value})


class RowStateTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_gather_scatter_rows(self):
    cfg = opt_config(name='adam')
    opt = optim.make_direction(cfg)
    params = model.Params(jnp.zeros((5, 2)), jnp.zeros(2))
    state = opt.init(params)
    ids = jnp.array([3, 1, 5])   # 5 = padding (F)

    @self.variant
    def roundtrip(state):
      rows = optim.gather_state_rows(state, ids, params.W.shape)
      rows = jax_tree_add(rows, 1.0)
      return optim.scatter_state_rows(state, rows, ids, params.W.shape)

    out = roundtrip(state)
    mu = np.asarray(out[0].mu.W)
    np.testing.assert_array_equal(mu[[1, 3]], 1.0)
    np.testing.assert_array_equal(mu[[0, 2, 4]], 0.0)
    np.testing.assert_array_equal(out[0].mu.b, 1.0)   # dense leaf: replaced
    self.assertTrue(optim.has_row_state(cfg))
    self.assertTrue(optim.has_row_state(opt_config(momentum=0.5)))
    self.assertFalse(optim.has_row_state(opt_config()))
    # Found from the state tree, whatever the name: a clipped plain SGD has
    # no row state, Lion and AdaBelief have theirs.
    self.assertFalse(optim.has_row_state(opt_config(clip_norm=1.0)))
    self.assertTrue(optim.has_row_state(opt_config(name='lion')))
    self.assertTrue(optim.has_row_state(opt_config(name='adabelief')))


def jax_tree_add(tree, v):
  import jax
  return jax.tree_util.tree_map(
      lambda a: a + v if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


if __name__ == '__main__':
  absltest.main()
