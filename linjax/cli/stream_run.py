"""`experiments.train`'s run when the corpus is read out of core.

`train_and_evaluate` is `linjax.cli.train.train_and_evaluate` for a corpus
that linjax/cli/stream_data.py streams (single labels, one process): the
same steps, files and results, with the data on disk in the workdir while
the run lasts. Differences a user sees: the saved model's bucket names come
from the training documents of the first chunk of ``data.train`` (a
sample; `interpret` and explanations use them), ``results.json`` has
``streamed: true``, the gradient check runs on the first 256 training
documents, and the program is compiled when training starts (the number of
classes is known only once the file is read).
"""

from __future__ import annotations

import collections.abc
import itertools
import os
import shutil
import tempfile
import time

from absl import logging
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import finish_run
from linjax.cli import label_checks
from linjax.cli import report_texts
from linjax.cli import run_data
from linjax.cli import stream_data
from linjax.cli import workdir as workdir_lib


class NamesPerDocument(collections.abc.Sequence):
  """One class name per training document, made as it is read: ``counts[c]``
  times ``names[c]`` for each class c in turn. The label checks read the
  names document by document; a list of 2.9 M of them (healthtweets x64)
  took 180 MB, the out-of-core run's peak."""

  def __init__(self, names, counts):
    self.names = list(names)
    self.ends = np.cumsum(np.asarray(counts, np.int64))

  def __len__(self) -> int:
    return int(self.ends[-1]) if self.ends.size else 0

  def __getitem__(self, index):
    if isinstance(index, slice):
      return [self[i] for i in range(*index.indices(len(self)))]
    if index < 0:
      index += len(self)
    if not 0 <= index < len(self):
      raise IndexError(index)
    return self.names[int(np.searchsorted(self.ends, index, 'right'))]

  def __iter__(self):
    starts = np.concatenate([[0], self.ends[:-1]])
    return itertools.chain.from_iterable(
        itertools.repeat(name, int(end - start))
        for name, start, end in zip(self.names, starts, self.ends))


def _fit(options, data, checkpoint_dir, callback, keep: int,
         overwrite: bool):
  """`training.fit` on the training store, as the in-memory runner's."""
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  from linjax.engine import training  # pylint: disable=g-import-not-at-top

  def fit():
    with checkpoint.retaining(keep):
      return training.fit(
          data.train_x, data.train_y, data.label_map.num_classes,
          optimizer=options.optimizer, training=options.training,
          val_x=data.val_x,
          val_y=data.val_y if data.val_x is not None else None,
          callback=callback, checkpoint_dir=checkpoint_dir)
  try:
    return fit()
  except checkpoint.CheckpointError as e:
    if not overwrite:
      raise checkpoint.CheckpointError(
          f'{e} Nothing was changed: choose another --workdir, or pass '
          f'--overwrite to discard the checkpoints.') from None
    checkpoint.remove(checkpoint_dir)
    return fit()


def train_and_evaluate(config, workdir: str, overwrite: bool = False,
                       stage: console.Stage | None = None,
                       chunk_bytes: int = stream_data.CHUNK_BYTES,
                       plots: bool = False, timeline=None) -> dict:
  """As `linjax.cli.train.train_and_evaluate` (see module docstring)."""
  from linjax.cli import run_timeline  # pylint: disable=g-import-not-at-top
  timeline = timeline or run_timeline.Timeline()
  options = config_check.validate(config)
  run = workdir_lib.prepare(workdir, overwrite)
  stage = stage or console.Stage()
  with timeline.phase('imports'):
    from linjax.cli import run_checks  # pylint: disable=g-import-not-at-top
    from linjax import saved_model  # pylint: disable=g-import-not-at-top
    from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
    from linjax.engine.options import train_loss  # pylint: disable=g-import-not-at-top
    run_data.enable_compile_cache(config)
  folder = tempfile.mkdtemp(prefix='.stream-', dir=workdir)
  try:
    stage.phase = 'reading and featurising the data'
    size = workdir_lib.format_bytes(os.path.getsize(config.data.train))
    with timeline.phase('read and featurise'), console.phase(
        f'reading and featurising {config.data.train} ({size}) in chunks of '
        f'{workdir_lib.format_bytes(chunk_bytes)} (out of core)'):
      data = stream_data.read_and_featurise(config, options, folder,
                                            chunk_bytes)
    names = data.label_map.names
    num_val = 0 if data.val_x is None else data.val_x.num_docs
    num_test = 0 if data.test_x is None else data.test_x.num_docs
    logging.info('%d train, %d validation, %d test documents in %d classes; '
                 'F=%d features, %d non-zeros in train',
                 data.train_x.num_docs, num_val, num_test, len(names),
                 data.featurizer.num_features, data.train_x.nnz)
    label_checks.check_training_labels(
        NamesPerDocument(names, np.bincount(data.train_y,
                                            minlength=len(names))),
        data.train_x.num_docs, options.training.loss,
        config.data.label_separator, config.data.lenient)
    gradcheck_job = None
    if config.train.gradcheck:
      n = min(256, data.train_x.num_docs)
      gradcheck_job = run_checks.GradcheckInBackground(
          data.train_x.take(np.arange(n)), data.train_y[:n], len(names),
          float(options.training.l2), seed=options.training.seed,
          loss=train_loss(options.training))

    checkpoint_dir = run.join(workdir_lib.CHECKPOINTS)
    if run.finished:
      workdir_lib.forget_finished_run(run)
    guard = run_checks.DivergenceGuard(len(names),
                                       options.optimizer.learning_rate,
                                       train_loss(options.training))
    log = workdir_lib.MetricsLog(run.join(workdir_lib.METRICS))
    progress = console.Progress('epoch', options.training.epochs, every=0)

    def callback(entry: dict) -> None:
      guard.check_epoch(entry['epoch'], entry['train_loss'])
      log.write(saved_model.jsonable(entry))
      stage.epochs_done = entry['epoch']
      progress.update(entry['epoch'], (
          f'train loss {entry["train_loss"]:.4f}, '
          f'{entry.get("tokens_per_s") or 0.0:.0f} tokens/s'))

    every = options.training.checkpoint_every
    stage.epochs_done = checkpoint.latest_epoch(checkpoint_dir) or 0
    stage.training = True
    try:
      with timeline.phase('train'):
        fit = _fit(options, data, checkpoint_dir if every else None,
                   callback, int(config.train.keep_checkpoints), overwrite)
    finally:
      log.close()
    stage.training, stage.phase = False, 'evaluating'
    log.finish(saved_model.jsonable(fit.history))

    test_texts = None if data.test_x is None else (   # read on demand
        report_texts.StreamedTexts(config, data.test_idx, data.test_y,
                                   data.label_map, chunk_bytes))
    trained = finish_run.Trained(
        config=config, options=options, workdir=workdir, run=run, fit=fit,
        featurizer=data.featurizer, label_map=data.label_map,
        train_x=data.train_x, train_y=data.train_y, val_x=data.val_x,
        val_y=data.val_y, test_x=data.test_x, test_y=data.test_y,
        num_train=data.train_x.num_docs, num_val=num_val, num_test=num_test,
        load_seconds=data.load_seconds,
        featurize_seconds=data.featurize_seconds, where=dict(streamed=True),
        guard=guard, gradcheck_job=gradcheck_job, timeline=timeline,
        plots=plots, test_texts=test_texts)
    write_test_split = None
    if data.test_idx is not None and data.test_idx.size:
      def write_test_split(path: str) -> None:
        stream_data.write_test_split(path, config, data.test_idx)
      # report.html's texts are then read from test_split.jsonl.
      write_test_split = test_texts.writing_test_split(write_test_split)
    return finish_run.finish(trained, finish_run.Scoring(
        evaluate=stream_data.evaluate,
        predict_test=lambda params, x, y, loss='softmax': (
            y, stream_data.predict_proba(params, x)),   # softmax only
        write_test_split=write_test_split, streamed=True), stage)
  finally:
    shutil.rmtree(folder, ignore_errors=True)
