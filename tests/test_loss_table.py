"""The table of losses (linjax/core/losses.py): entries, lookup, a user's loss.

Every built-in entry is checked the same way: its numpy twin against its
JAX function, its hand-derived gradient (where it has one) against
`jax.grad` of that function, and the engine's score gradient against
`jax.vjp`. A user's loss is found by name, by function and by MODULE:NAME
(a module written into a temporary folder), and every failure is one line.
"""

import dataclasses
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import linjax
from linjax.core import host_losses
from linjax.core import losses


def _labels(loss, rng, n, c):
  if loss.multi_label:
    return (rng.random((n, c)) < 0.4).astype(np.uint8)
  return rng.integers(0, c, n).astype(np.int32)


BUILT_IN = list(losses.BUILT_IN_NAMES)


@pytest.mark.parametrize('name', BUILT_IN)
def test_host_twin_equals_the_jax_function(name):
  loss = losses.get_loss(name)
  rng = np.random.default_rng(0)
  z = (rng.normal(size=(64, 5)) * 4).astype(np.float32)
  y = _labels(loss, rng, 64, 5)
  want = np.asarray(loss(jnp.asarray(z), jnp.asarray(y)))
  got = loss.host_loss(z, y)
  assert got.dtype == np.float32 and got.shape == (64,)
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize('name', BUILT_IN)
def test_hand_gradient_equals_autodiff_in_float64(name):
  loss = losses.get_loss(name)
  if loss.hand_grad is None:
    pytest.skip(f'{name} has no hand-derived gradient')
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    z = jnp.asarray(rng.normal(size=(16, 4)) * 3)
    y = jnp.asarray(_labels(loss, rng, 16, 4))
    value, grad = loss.hand_grad(z, y)
    auto = jax.grad(lambda s: jnp.sum(loss(s, y)))(z)
    np.testing.assert_allclose(value, loss(z, y), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, auto, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('name', BUILT_IN)
def test_score_gradient_weights_each_example(name):
  """value_and_score_grad = d sum(w * loss) / dz, hand-derived or not."""
  loss = losses.get_loss(name)
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    z = jnp.asarray(rng.normal(size=(6, 3)))
    y = jnp.asarray(_labels(loss, rng, 6, 3))
    w = jnp.asarray([1.0, 0.0, 2.0, 0.5, 1.0, 0.0])
    want = jax.grad(lambda s: jnp.sum(w * loss(s, y)))(z)
    for entry in (loss, dataclasses.replace(loss, hand_grad=None)):
      value, grad = entry.value_and_score_grad(z, y, w)
      np.testing.assert_allclose(value, loss(z, y), rtol=1e-12)
      np.testing.assert_allclose(grad, want, rtol=1e-10, atol=1e-12)


def test_softmax_and_sigmoid_entries_are_the_lecture_losses():
  rng = np.random.default_rng(3)
  z = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  y = jnp.asarray([0, 2, 1, 1, 0])
  np.testing.assert_allclose(
      losses.get_loss('softmax')(z, y),
      optax.softmax_cross_entropy_with_integer_labels(z, y), rtol=1e-6)
  Y = jnp.asarray(rng.random((5, 3)) < 0.5, jnp.float32)
  np.testing.assert_allclose(
      losses.get_loss('sigmoid')(z, Y),
      optax.sigmoid_binary_cross_entropy(z, Y).sum(-1), rtol=1e-6)
  assert losses.get_loss('softmax').label_kind == losses.CLASS
  assert losses.get_loss('sigmoid').multi_label
  assert losses.get_loss('softmax').probability == 'softmax'
  p = losses.get_loss('sigmoid').proba(np.asarray(z))
  np.testing.assert_allclose(p, 1 / (1 + np.exp(-np.asarray(z))), rtol=1e-6)


def test_hinge_is_crammer_singer_as_optax():
  hinge = losses.get_loss('hinge')
  assert hinge.label_kind == losses.CLASS and not hinge.has_probabilities
  # Hand-worked: scores (2, 1, 0). True class 0 leads by only 1 over class
  # 1, so max(2, 1 + 1, 0 + 1) - 2 = 0; true class 2 trails: max(3, 2, 0)
  # - 0 = 3; true class 1: max(3, 1, 1) - 1 = 2.
  z = jnp.asarray([[2.0, 1.0, 0.0]] * 3)
  np.testing.assert_allclose(hinge(z, jnp.asarray([0, 2, 1])), [0.0, 3.0, 2.0])
  rng = np.random.default_rng(4)
  z = jnp.asarray(rng.normal(size=(50, 6)) * 2, jnp.float32)
  y = jnp.asarray(rng.integers(0, 6, 50))
  np.testing.assert_allclose(hinge(z, y),
                             optax.losses.multiclass_hinge_loss(z, y),
                             rtol=1e-6, atol=1e-6)
  assert np.isnan(hinge(z[:1], jnp.asarray([6]))[0])   # a bad label
  # Never below 0 in float32 (optax's form rounds to -5e-7 here).
  z = jnp.asarray(rng.normal(size=(1000, 3)) * 5, jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, 1000))
  theirs, ours = optax.losses.multiclass_hinge_loss(z, y), hinge(z, y)
  assert float(theirs.min()) < 0 <= float(ours.min())
  np.testing.assert_allclose(ours, theirs, atol=2e-6)
  # Its subgradient: -1 on the true class, +1 on the worst violator.
  g = jax.grad(lambda s: hinge(s, jnp.asarray(2)))(jnp.asarray([2.0, 1.0, 0.0]))
  np.testing.assert_allclose(g, [1.0, 0.0, -1.0])
  with pytest.raises(ValueError, match="not available for loss 'hinge'"):
    hinge.proba(np.asarray(z))


def test_label_smoothing_is_optax_smooth_labels():
  rng = np.random.default_rng(6)
  z = jnp.asarray(rng.normal(size=(20, 5)) * 3, jnp.float32)
  y = jnp.asarray(rng.integers(0, 5, 20))
  smooth = losses.get_loss('softmax').with_settings(label_smoothing=0.1)
  assert smooth.settings == (('label_smoothing', 0.1),)
  want = optax.softmax_cross_entropy(
      z, optax.smooth_labels(jax.nn.one_hot(y, 5), 0.1))
  np.testing.assert_allclose(smooth(z, y), want, rtol=1e-5)
  np.testing.assert_allclose(smooth.host_loss(np.asarray(z), np.asarray(y)),
                             want, rtol=1e-5)
  # Hand-worked: z = 0 gives -log(1/C) whatever the targets.
  np.testing.assert_allclose(smooth(jnp.zeros((1, 4)), jnp.asarray([2])),
                             [np.log(4)], rtol=1e-6)
  with jax.enable_x64(True):
    z64, y64 = jnp.asarray(np.asarray(z, np.float64)), jnp.asarray(y)
    value, grad = smooth.hand_grad(z64, y64, label_smoothing=0.1)
    np.testing.assert_allclose(value, smooth(z64, y64), rtol=1e-12)
    np.testing.assert_allclose(
        grad, jax.grad(lambda s: jnp.sum(smooth(s, y64)))(z64), rtol=1e-10,
        atol=1e-12)
  # 0 is the plain loss, bit for bit (nothing bound).
  plain = losses.get_loss('softmax').with_settings(label_smoothing=0.0)
  assert plain == losses.get_loss('softmax')
  options = linjax.TrainOptions(label_smoothing=0.1)
  with pytest.raises(linjax.ConfigError,
                     match='label_smoothing must be 0 with train.loss=.hinge'):
    linjax.TrainOptions(loss='hinge', label_smoothing=0.1)
  with pytest.raises(linjax.ConfigError, match='label_smoothing must be a '
                     'fraction'):
    linjax.TrainOptions(label_smoothing=1.0)
  from linjax.engine.options import train_loss  # pylint: disable=g-import-not-at-top
  assert train_loss(options) == smooth


def test_modified_huber_is_scikit_learns_one_vs_rest():
  sgd_fast = pytest.importorskip('sklearn.linear_model._sgd_fast')
  huber = losses.get_loss('modified_huber')
  assert huber.label_kind == losses.CLASS
  reference = sgd_fast.ModifiedHuber()
  rng = np.random.default_rng(7)
  z = rng.normal(size=(30, 4)) * 2
  y = rng.integers(0, 4, 30)
  sign = np.where(np.arange(4) == y[:, None], 1.0, -1.0)  # one vs rest
  want = [[reference.py_loss(z[i, k], sign[i, k]) for k in range(4)]
          for i in range(30)]
  dwant = [[reference.py_dloss(z[i, k], sign[i, k]) for k in range(4)]
           for i in range(30)]
  with jax.enable_x64(True):
    z64, y64 = jnp.asarray(z), jnp.asarray(y)
    np.testing.assert_allclose(huber(z64, y64), np.sum(want, 1), rtol=1e-12)
    np.testing.assert_allclose(
        jax.grad(lambda s: jnp.sum(huber(s, y64)))(z64), dwant, rtol=1e-12)
  # Hand-worked, one class against the rest: margins 2 (no loss), 0.5
  # ((1 - 0.5)^2), -3 (linear: 12).
  np.testing.assert_allclose(
      huber(jnp.asarray([[2.0, -0.5, 3.0]]), jnp.asarray([0])),
      [0.25 + 12.0])


def test_modified_huber_probabilities_are_scikit_learns():
  linear_model = pytest.importorskip('sklearn.linear_model')
  rng = np.random.default_rng(8)
  X = rng.normal(size=(120, 5))
  y = rng.integers(0, 3, 120)
  clf = linear_model.SGDClassifier(loss='modified_huber', random_state=0,
                                   max_iter=5, tol=None).fit(X, y)
  z = clf.decision_function(X).astype(np.float32)
  z[:3] = -2.0       # every class below -1: scikit-learn's uniform rows
  want = clf.predict_proba(X)
  want[:3] = 1.0 / 3
  np.testing.assert_allclose(losses.get_loss('modified_huber').proba(z),
                             want, rtol=1e-5, atol=1e-6)


def test_loss_names_and_unknown_names():
  assert losses.loss_names()[:3] == ('softmax', 'sigmoid', 'hinge')
  with pytest.raises(losses.LossNotFound) as info:
    losses.get_loss('sofmax')
  text = str(info.value)
  assert '\n' not in text and "unknown loss 'sofmax'" in text
  assert 'softmax' in text and 'MODULE:NAME' in text
  with pytest.raises(losses.LossNotFound, match='must be a name'):
    losses.get_loss(3)


def _poly1(logits, labels):
  """PolyLoss (Leng et al. 2022): cross-entropy + (1 - p_y)."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return ce + (1.0 - jnp.exp(-ce))


def test_register_a_loss_of_your_own():
  fn = losses.register_loss('test_poly1', _poly1, probability='softmax')
  assert fn is _poly1
  entry = losses.get_loss('test_poly1')
  assert entry.per_example is _poly1 and entry.probability == 'softmax'
  assert losses.get_loss(_poly1) is entry        # the function finds it
  assert 'test_poly1' in losses.loss_names()
  options = linjax.TrainOptions(loss=_poly1)
  assert options.loss == 'test_poly1'            # kept as its table name
  with pytest.raises(ValueError, match="'softmax' is a built-in loss"):
    losses.register_loss('softmax', _poly1)

  @losses.register_loss('test_squared', label_kind=losses.CLASS)
  def squared(logits, labels):
    return jnp.sum((logits - jax.nn.one_hot(labels, logits.shape[-1])) ** 2,
                   -1)
  assert losses.get_loss('test_squared').per_example is squared
  assert not losses.get_loss('test_squared').has_probabilities


def test_a_bare_function_gets_its_module_reference():
  def local(logits, labels):
    return jnp.sum(logits, -1) * 0.0 + labels
  entry = losses.get_loss(local)
  assert entry.name.endswith(':test_a_bare_function_gets_its_module_'
                             'reference.<locals>.local')
  assert entry.label_kind == losses.CLASS and entry.probability is None
  assert losses.get_loss(entry.name) is entry


@pytest.fixture
def user_module(tmp_path, monkeypatch):
  """A module of the user's, in a folder on sys.path."""
  (tmp_path / 'hloss_user_losses.py').write_text(textwrap.dedent('''
      import jax.numpy as jnp
      import optax
      import linjax

      def poly1(logits, labels):
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return ce + (1.0 - jnp.exp(-ce))

      @linjax.register_loss('hloss_tagged', probability='softmax')
      def tagged(logits, labels):
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

      NOT_A_FUNCTION = 3
  '''))
  (tmp_path / 'hloss_broken_losses.py').write_text('1 / 0\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  yield 'hloss_user_losses'
  for name in ('hloss_user_losses', 'hloss_broken_losses'):
    sys.modules.pop(name, None)


def test_module_name_references(user_module):
  entry = losses.get_loss(f'{user_module}:poly1')
  assert entry.name == f'{user_module}:poly1'
  assert entry.label_kind == losses.CLASS and entry.probability is None
  z = jnp.asarray([[2.0, 0.0, -1.0]])
  np.testing.assert_allclose(entry(z, jnp.asarray([0])),
                             _poly1(z, jnp.asarray([0])), rtol=1e-6)
  # A function the module registered keeps its facts, under the reference.
  tagged = losses.get_loss(f'{user_module}:tagged')
  assert tagged.name == f'{user_module}:tagged'
  assert tagged.probability == 'softmax'
  assert linjax.TrainOptions(loss=f'{user_module}:poly1').loss == (
      f'{user_module}:poly1')


@pytest.mark.parametrize('ref,message', [
    ('hloss_no_such_module:f', "cannot import module 'hloss_no_such_module'"),
    ('hloss_user_losses:nope', "has no attribute 'nope'"),
    ('hloss_user_losses:NOT_A_FUNCTION', 'names a int, not a function'),
    ('hloss_broken_losses:f', 'ZeroDivisionError'),
])
def test_module_name_failures_are_one_line(user_module, ref, message):
  del user_module
  with pytest.raises(losses.LossNotFound) as info:
    losses.get_loss(ref)
  assert message in str(info.value) and '\n' not in str(info.value)
  with pytest.raises(linjax.ConfigError) as info:
    linjax.TrainOptions(loss=ref)
  assert str(info.value).startswith('train.loss must name a loss: ')
  assert message in str(info.value)


def test_probability_maps():
  z = np.asarray([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
  np.testing.assert_allclose(host_losses.softmax(z).sum(1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(host_losses.sigmoid(z)[0, 0],
                             1 / (1 + np.exp(-2.0)), rtol=1e-6)
  margin = losses.Loss('test_margin', lambda z, y: z[..., 0])
  with pytest.raises(ValueError, match="not available for loss 'test_margin'"):
    margin.proba(z)


def test_loss_is_hashable_and_checked():
  a = losses.get_loss('softmax')
  assert hash(a) == hash(losses.get_loss('softmax')) and a == a
  with pytest.raises(ValueError, match='label_kind must be one of'):
    losses.Loss('x', _poly1, label_kind='ranking')
  with pytest.raises(ValueError, match='probability must be None or one of'):
    losses.Loss('x', _poly1, probability='tanh')
  with pytest.raises(ValueError, match="takes no option 'label_smoothing'"):
    losses.get_loss('sigmoid').with_settings(label_smoothing=0.1)


def test_train_options_take_a_loss_object_only_as_the_table_has_it():
  mine = losses.Loss('test_abs_margin', lambda z, y: jnp.sum(jnp.abs(z), -1))
  assert linjax.TrainOptions(loss=mine).loss == 'test_abs_margin'
  assert losses.get_loss('test_abs_margin') is mine      # found by name again
  assert linjax.TrainOptions(loss=losses.get_loss('hinge')).loss == 'hinge'
  smoothed = losses.get_loss('softmax').with_settings(label_smoothing=0.1)
  with pytest.raises(linjax.ConfigError, match='train.label_smoothing'):
    linjax.TrainOptions(loss=smoothed)                 # not silently dropped
  impostor = losses.Loss('softmax', _poly1)
  with pytest.raises(linjax.ConfigError, match="not the table's"):
    linjax.TrainOptions(loss=impostor)
