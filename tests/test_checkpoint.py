"""Checkpoints: atomic, checksummed, and resuming gives the same model."""

import hashlib
import io
import json
import os
import tempfile

from absl.testing import absltest
import numpy as np

from linjax.engine import checkpoint
from linjax.engine import training as train
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text import csr

F, C = 40, 3


def corpus(n=40, seed=0):
  """Random documents, each with its class's marker feature and noise."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, C, n)
  rows = []
  for i in range(n):
    ids = np.unique(np.append(rng.integers(C, F, rng.integers(1, 8)), y[i]))
    w = rng.uniform(0.5, 2.0, ids.size)
    rows.append((ids, w / np.linalg.norm(w)))
  return csr.from_rows(rows, F), y.astype(np.int32)


def options(optimizer=None, **training):
  """Small batches so that an epoch has several steps; a checkpoint every
  epoch, however short."""
  training = dict(dict(batch_size=4, token_budget=24, epochs=3,
                       checkpoint_seconds=0), **training)
  return dict(optimizer=optimizer or OptimizerOptions(learning_rate=0.5),
              training=TrainOptions(**training))


class CheckpointFileTest(absltest.TestCase):

  def test_roundtrip_keep_and_corruption(self):
    d = tempfile.mkdtemp()
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for epoch in (1, 2, 3):
      checkpoint.save(d, epoch, dict(a=a * epoch, i=np.int32(epoch)),
                      dict(note='x', epoch=epoch), keep=2)
    self.assertEqual(checkpoint.epochs(d), [2, 3])
    self.assertFalse([n for n in os.listdir(d) if n.startswith('.tmp')])
    epoch, arrays, meta = checkpoint.load(d)
    self.assertEqual((epoch, meta['note']), (3, 'x'))
    np.testing.assert_array_equal(arrays['a'], a * 3)
    # Flip one byte: the checksum names the file.
    path = os.path.join(d, 'ckpt_000003.npz')
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                'ckpt_000003.npz: checksum mismatch'):
      checkpoint.load(d)
    # Truncated file, too.
    open(path, 'wb').write(bytes(data[:100]))
    with self.assertRaisesRegex(checkpoint.CheckpointError, 'truncated'):
      checkpoint.load(d, 3)
    np.testing.assert_array_equal(checkpoint.load(d, 2)[1]['a'], a * 2)

  def test_uncommitted_checkpoint_is_ignored(self):
    d = tempfile.mkdtemp()
    checkpoint.save(d, 1, dict(a=np.ones(3)), {})
    # A crash between the .npz and the .json commit leaves only the .npz.
    open(os.path.join(d, 'ckpt_000002.npz'), 'wb').write(b'partial')
    self.assertEqual(checkpoint.latest_epoch(d), 1)

  def test_save_refuses_object_arrays_and_writes_nothing(self):
    d = tempfile.mkdtemp()
    with self.assertRaisesRegex(ValueError, "array 'a' holds Python objects"):
      checkpoint.save(d, 1, dict(a=np.array([{'x': 1}], dtype=object)), {})
    self.assertEqual(os.listdir(d), [])
    self.assertIsNone(checkpoint.latest_epoch(d))

  def test_load_refuses_a_pickled_array(self):
    """A checkpoint whose .npz holds a pickle (written behind save's back,
    with a record that matches its checksum) fails on load, naming the file,
    and the pickle is never unpickled."""
    d = tempfile.mkdtemp()
    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([{'x': 1}], dtype=object))  # pickles
    data = buffer.getvalue()
    npz = os.path.join(d, 'ckpt_000001.npz')
    with open(npz, 'wb') as f:
      f.write(data)
    with open(os.path.join(d, 'ckpt_000001.json'), 'w') as f:
      json.dump(dict(format=checkpoint.FORMAT, epoch=1, bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), meta={}), f)
    with self.assertRaisesRegex(checkpoint.CheckpointError,
                                'ckpt_000001.npz: unreadable arrays'):
      checkpoint.load(d)


class ResumeTest(absltest.TestCase):

  def test_resume_gives_the_uninterrupted_model(self):
    x, y = corpus(seed=11)
    opts = options(OptimizerOptions(name='adam', learning_rate=0.05),
                   epochs=4, l2=0.01, update_path='sparse', patience=3)
    full = train.fit(x, y, C, val_x=x, val_y=y, **opts)
    d = tempfile.mkdtemp()

    def crash(record):
      if record['epoch'] == 3:
        raise KeyboardInterrupt('simulated crash')

    with self.assertRaises(KeyboardInterrupt):
      train.fit(x, y, C, val_x=x, val_y=y, callback=crash, checkpoint_dir=d,
                **opts)
    self.assertEqual(checkpoint.latest_epoch(d), 2)
    resumed = train.fit(x, y, C, val_x=x, val_y=y, checkpoint_dir=d, **opts)
    np.testing.assert_array_equal(resumed.params.W, full.params.W)
    np.testing.assert_array_equal(resumed.params.b, full.params.b)
    self.assertEqual(resumed.epochs_run, 4)
    self.assertEqual([h['val_loss'] for h in resumed.history],
                     [h['val_loss'] for h in full.history])
    self.assertEqual(checkpoint.latest_epoch(d), 4)

  def test_other_config_refused(self):
    x, y = corpus(seed=12)
    d = tempfile.mkdtemp()
    train.fit(x, y, C, checkpoint_dir=d, **options(epochs=1))
    with self.assertRaisesRegex(checkpoint.CheckpointError, 'another config'):
      train.fit(x, y, C, checkpoint_dir=d,
                **options(OptimizerOptions(learning_rate=0.3), epochs=1))
    with self.assertRaisesRegex(checkpoint.CheckpointError, 'another config'):
      train.fit(x, y, C, checkpoint_dir=d, **options(epochs=1, l2=0.01))

  def test_knobs_that_leave_the_model_unchanged_still_resume(self):
    """Issue 13, item 12: the resume fingerprint held a compile-cache folder.
    Steps per call, patience and the checkpoint intervals do not change the
    trained model, so changing them between a run and its resume is fine."""
    x, y = corpus(seed=14)
    full = train.fit(x, y, C, **options(epochs=3))
    d = tempfile.mkdtemp()
    with self.assertRaises(_Stop):
      train.fit(x, y, C, checkpoint_dir=d, callback=_stop_after(1),
                **options(epochs=3))
    self.assertEqual(checkpoint.latest_epoch(d), 1)
    resumed = train.fit(x, y, C, checkpoint_dir=d,
                        **options(epochs=3, steps_per_call=1, patience=5,
                                  checkpoint_every=2, checkpoint_seconds=5))
    np.testing.assert_allclose(resumed.params.W, full.params.W, rtol=1e-6,
                               atol=1e-7)

  def test_checkpoints_wait_for_checkpoint_seconds(self):
    """A checkpoint is written once checkpoint_seconds have passed since the
    training began or the last one: none in a short run at an hour, every
    epoch at 0; the model is the same either way."""
    x, y = corpus(seed=15)
    hourly, every = tempfile.mkdtemp(), tempfile.mkdtemp()
    a = train.fit(x, y, C, checkpoint_dir=hourly,
                  **options(epochs=3, checkpoint_seconds=3600))
    self.assertIsNone(checkpoint.latest_epoch(hourly))
    self.assertEqual(os.listdir(hourly), [])
    written = []
    b = train.fit(x, y, C, checkpoint_dir=every,
                  callback=lambda r: written.append(
                      checkpoint.latest_epoch(every)),
                  **options(epochs=3))
    # The callback runs before the epoch's checkpoint: it sees the last one.
    self.assertEqual(written, [None, 1, 2])
    self.assertEqual(checkpoint.latest_epoch(every), 3)
    np.testing.assert_array_equal(a.params.W, b.params.W)

  def test_divergence_keeps_last_good_checkpoint(self):
    x, y = corpus(seed=13)
    d = tempfile.mkdtemp()
    opts = options(OptimizerOptions(learning_rate=0.5, schedule='constant'),
                   epochs=3)

    # A crash after epoch 1's checkpoint, then a resume on poisoned data.
    with self.assertRaises(_Stop):
      train.fit(x, y, C, checkpoint_dir=d, callback=_stop_after(1), **opts)
    self.assertEqual(checkpoint.latest_epoch(d), 1)
    x.weights[0] = np.inf
    with self.assertRaisesRegex(train.TrainingDiverged, 'epoch 2, step'):
      train.fit(x, y, C, checkpoint_dir=d, **opts)
    self.assertEqual(checkpoint.latest_epoch(d), 1)
    checkpoint.load(d)   # still valid


def _stop_after(epoch):
  def callback(record):
    if record['epoch'] > epoch:
      raise _Stop()
  return callback


class _Stop(Exception):
  pass


if __name__ == '__main__':
  absltest.main()
