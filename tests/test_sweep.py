"""Vmapped sweeps: each grid point is the model a separate fit() trains."""

from absl.testing import absltest
import numpy as np

from linjax.core.errors import ConfigError
from linjax.engine import hyper_sweep
from test_train import C
from test_train import config
from test_train import corpus
from test_train import fit


def sweep(x, y, opts, learning_rates, l2s, val_x, val_y):
  return hyper_sweep.sweep(x, y, C, learning_rates=learning_rates, l2s=l2s,
                           val_x=val_x, val_y=val_y,
                           optimizer=opts.optimizer, training=opts.training)


class SweepTest(absltest.TestCase):

  def test_grid_matches_separate_fits_and_picks_best(self):
    x, y = corpus(seed=21)
    xv, yv = corpus(n=30, seed=22)
    cfg = config(train__update_path='sparse')
    lrs, l2s = [0.05, 1.0], [0.0, 0.02]
    result = sweep(x, y, cfg, lrs, l2s, xv, yv)
    self.assertLen(result.grid, 4)
    separate = {}
    for point in result.grid:
      one = config(train__update_path='sparse', optimizer__learning_rate=point['lr'],
                   train__l2=point['l2'])
      r = fit(x, y, one, val_x=xv, val_y=yv)
      separate[(point['lr'], point['l2'])] = r.history[-1]['val_accuracy']
      self.assertAlmostEqual(point['val_loss'], r.history[-1]['val_loss'],
                             places=5)
      self.assertAlmostEqual(point['val_accuracy'],
                             r.history[-1]['val_accuracy'])
      if (point['lr'], point['l2']) == (result.best_lr, result.best_l2):
        np.testing.assert_allclose(result.params.W, r.params.W, atol=1e-5)
    # The choice is the separate fits' best (the first best in grid order),
    # and the grid is not flat, so a wrong choice would show.
    self.assertGreater(len(set(separate.values())), 1)
    want = max(separate, key=separate.get)
    self.assertEqual((result.best_lr, result.best_l2), want)
    self.assertGreater(result.seconds, 0)

  def test_bad_grid_value_names_key(self):
    x, y = corpus()
    with self.assertRaisesRegex(ConfigError, r'^optimizer\.learning_rate'):
      sweep(x, y, config(), [0.1, -1.0], [0.0], x, y)
    with self.assertRaisesRegex(ConfigError, r'^train\.l2'):
      sweep(x, y, config(), [0.1], [-0.5], x, y)


if __name__ == '__main__':
  absltest.main()
