"""A checkpointed run resumes on another number of sub-batches per step.

The global steps, hence the model, do not depend on how many devices or
processes split each step (linjax/engine/step_split.py), so the checkpoint
fingerprint leaves that number out: a run interrupted on one device and
resumed split two ways (S = 2 sub-batches, as two devices or processes
feed them) trains the uninterrupted 1-device model.
"""

import os
import sys

import numpy as np
import pytest

from linjax.engine import checkpoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train import config  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_train import corpus  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_train import fit  # pylint: disable=g-import-not-at-top,wrong-import-position


class _Stop(Exception):
  pass


def _stop_after(epoch):
  """Stops `fit` as epoch ``epoch + 1`` ends, before its checkpoint."""
  def callback(record):
    if record['epoch'] == epoch + 1:
      raise _Stop()
  return callback


@pytest.mark.parametrize('first, then', [(1, 2), (2, 1)])
def test_a_run_resumes_with_another_split_of_its_steps(tmp_path, first, then):
  x, y = corpus(n=61, seed=5)
  opts = config(train__epochs=4, train__checkpoint_every=1,
                train__checkpoint_seconds=0,
                train__update_path='sparse', train__l2=0.01)
  want = fit(x, y, opts, num_shards=1).params
  with pytest.raises(_Stop):
    fit(x, y, opts, num_shards=first, checkpoint_dir=str(tmp_path),
        callback=_stop_after(2))
  assert checkpoint.latest_epoch(str(tmp_path)) == 2
  resumed = fit(x, y, opts, num_shards=then, checkpoint_dir=str(tmp_path))
  assert resumed.epochs_run == 4
  assert [r['epoch'] for r in resumed.history] == [1, 2, 3, 4]
  scale = np.abs(want.W).max()
  assert scale > 0.1
  np.testing.assert_array_less(np.abs(resumed.params.W - want.W).max(),
                               1e-4 * scale)
  np.testing.assert_array_less(np.abs(resumed.params.b - want.b).max(),
                               1e-4 * max(np.abs(want.b).max(), 1.0))


def test_another_corpus_is_still_refused(tmp_path):
  x, y = corpus(n=61, seed=5)
  opts = config(train__epochs=3, train__checkpoint_every=1,
                train__checkpoint_seconds=0)
  with pytest.raises(_Stop):
    fit(x, y, opts, checkpoint_dir=str(tmp_path), callback=_stop_after(1))
  other, other_y = corpus(n=60, seed=5)
  with pytest.raises(checkpoint.CheckpointError, match='another config'):
    fit(other, other_y, opts, num_shards=2, checkpoint_dir=str(tmp_path))
