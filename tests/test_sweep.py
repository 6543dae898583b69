"""Vmapped sweeps: each grid point is the model a separate fit() trains."""

from absl.testing import absltest
import numpy as np

from linjax.engine import hyper_sweep as sweep
from linjax.engine import training as train
from test_train import C
from test_train import config
from test_train import corpus


class SweepTest(absltest.TestCase):

  def test_grid_matches_separate_fits_and_picks_best(self):
    x, y = corpus(seed=21)
    xv, yv = corpus(n=30, seed=22)
    cfg = config(train__update='sparse')
    lrs, l2s = [0.05, 1.0], [0.0, 0.02]
    result = sweep.run_sweep(x, y, C, cfg, lrs, l2s, xv, yv)
    self.assertLen(result.grid, 4)
    for point in result.grid:
      one = config(train__update='sparse', optimizer__learning_rate=point['lr'],
                   train__l2=point['l2'])
      r = train.fit(x, y, C, one, val_x=xv, val_y=yv)
      self.assertAlmostEqual(point['val_loss'], r.history[-1]['val_loss'],
                             places=5)
      self.assertAlmostEqual(point['val_accuracy'],
                             r.history[-1]['val_accuracy'])
      if (point['lr'], point['l2']) == (result.best_lr, result.best_l2):
        np.testing.assert_allclose(result.params.W, r.params.W, atol=1e-5)
    best = max(result.grid, key=lambda p: p['val_accuracy'])
    self.assertEqual(best['val_accuracy'],
                     max(p['val_accuracy'] for p in result.grid))
    self.assertEqual((best['lr'], best['l2']),
                     (result.best_lr, result.best_l2))
    self.assertGreater(result.seconds, 0)

  def test_bad_grid_value_names_key(self):
    x, y = corpus()
    with self.assertRaisesRegex(train.ConfigError, 'optimizer.learning_rate'):
      sweep.run_sweep(x, y, C, config(), [0.1, -1.0], [0.0], x, y)


if __name__ == '__main__':
  absltest.main()
