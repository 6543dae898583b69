"""`python -m experiments.train` on several processes: one model, many hosts.

Every process runs the same command; they find each other, in this order,
from the flags ``--coordinator_address=host0:1234 --num_processes=P
--process_id=i``, from ``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/
``JAX_PROCESS_ID``, from SLURM (``srun``) or from Open MPI (``mpirun``)
(linjax/engine/cluster.py). With one process nothing changes.

What a run of P processes does, and why it trains the 1-process model:

* Data: process i reads only its part of ``data.train`` (and of
  ``data.test``): a byte range of one file aligned to whole lines, or its
  own files of a glob (linjax/data/shards.py). The parts one after another
  in process order are the corpus a single process reads. The demo corpus
  is small: each process reads it and keeps its block of documents.
* Labels and splits: the label map is the union of every process's labels
  (sorted, as `LabelMap.fit` does). The labels (a few bytes a document) are
  gathered, and every process computes the 1-process run's
  ``data.max_per_class`` cap and validation and test splits by GLOBAL
  document index (`run_data.carve_splits`), then keeps its own documents.
  Each split's global order is ascending index, so the processes' parts of
  a split, one after another, are the 1-process split in its order.
* Features: hashing mode only (``features.buckets`` > 0; a vocabulary's ids
  would differ between processes, so ``buckets=0`` is refused). The document
  frequencies behind min_df and IDF are summed over the processes
  (`Featurizer.combine_document_frequencies`); bucket names (explanations,
  the saved model's feature names) come from process 0's part.
* Training: `training.fit` on each process's documents (global batches,
  linjax/engine/step_split.py); validation metrics, hence early stopping,
  are sums over all processes.
* Results: train, validation and test metrics are global (the test
  predictions are gathered). Only process 0 writes into ``--workdir``
  (results.json with ``num_processes`` and ``num_devices``, metrics.jsonl,
  the model, plots, checkpoints) and prints; the others print only errors.
  Resuming reads the checkpoints on every process, so ``--workdir`` must be
  a folder every process sees (a shared file system) when
  ``train.checkpoint_every`` > 0; a process that does not see process 0's
  checkpoints stops the run with a one-line error.
* Errors: a bad input on one process (a bad line in its part, a test label
  never seen in training) stops every process with that process's one-line
  error, instead of leaving the others waiting.

Not supported with several processes (a one-line `ConfigError`):
``features.buckets=0`` and a folder corpus (``data.format=folder|fortune``:
give files or a glob). Multi-label (``train.loss=sigmoid``) runs: the
union of the processes' tags, the 1-process splits, and the threshold
tuned on the whole validation split (linjax/cli/sharded_splits.py,
linjax/cli/finish_run.py).
"""

from __future__ import annotations

import contextlib
import os
import sys

from absl import flags
from absl import logging
import numpy as np

from linjax.cli import config_check
from linjax.cli import run_data
from linjax.core.errors import ConfigError

FLAG_NAMES = ('--coordinator_address', '--num_processes', '--process_id')


class ProcessFailed(RuntimeError):
  """Another process of the run failed; the message is its one-line error."""


def define_flags() -> None:
  """The runner's cluster flags (all three, or none)."""
  flags.DEFINE_string('coordinator_address', None, 'Multi-process runs: '
                      'host:port of process 0 (default: from '
                      'JAX_COORDINATOR_ADDRESS, SLURM or Open MPI).')
  flags.DEFINE_integer('num_processes', None, 'Multi-process runs: the '
                       'number of processes.')
  flags.DEFINE_integer('process_id', None, 'Multi-process runs: this '
                       'process, 0 .. num_processes - 1 (0 writes the '
                       'results).')


def check_config(config) -> None:
  """ConfigError for settings a multi-process run cannot honour."""
  problems = []
  if int(config.features.buckets) <= 0:
    problems.append('--config.features.buckets=0 (vocabulary mode) cannot '
                    'run on several processes (each would number its own '
                    'vocabulary); use hashing, e.g. '
                    '--config.features.buckets=1048576')
  for key in ('train', 'test'):
    path = config.data[key]
    if config.data.format in ('folder', 'fortune') or (
        path and os.path.isdir(os.path.expanduser(path))):
      problems.append(f'--config.data.{key}={path}: a folder corpus cannot '
                      'be split between processes; give one TSV, JSONL or '
                      'fastText file, or a glob of files')
  if problems:
    raise ConfigError(problems)


def join(config, coordinator_address=None, num_processes=None,
         process_id=None) -> Group:
  """Validates ``config``, then joins the cluster (before any JAX call).

  Args:
    config: the runner's ConfigDict (checked first, so that a bad flag fails
      on every process before they wait for each other).
    coordinator_address, num_processes, process_id: the flags' values.

  Returns:
    The `Group` of this run (one process: `Group(None)`).

  Raises:
    ConfigError: a bad config, flag or cluster variable.
  """
  from linjax.engine import cluster  # pylint: disable=g-import-not-at-top
  config_check.validate(config)
  spec = cluster.detect(coordinator_address, num_processes, process_id,
                        names=tuple(FLAG_NAMES))
  if spec is None:
    return Group(None)
  check_config(config)
  if _expected_index(spec) not in (None, 0):
    _quiet()
  cluster.join(coordinator_address, num_processes, process_id,
               names=tuple(FLAG_NAMES))
  group = Group(spec)
  if not group.is_writer and _expected_index(spec) is None:
    _quiet()
  return group


def _quiet() -> None:
  """A process other than 0 logs only errors and prints nothing (its
  stdout, where gloo also writes, goes to /dev/null; errors go to stderr)."""
  logging.set_verbosity(logging.ERROR)
  sys.stdout.flush()
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 1)
  os.close(devnull)


def _expected_index(spec) -> int | None:
  """This process's index as the launcher set it (None: not known yet)."""
  for value in (spec.process_id, os.environ.get('SLURM_PROCID'),
                os.environ.get('OMPI_COMM_WORLD_RANK')):
    if value is not None and str(value).strip().isdigit():
      return int(value)
  return None


def _user_errors() -> tuple:
  return config_check.user_error_types() + (ProcessFailed,)


class Group:
  """This run's processes: who writes, and the collective steps of a run.

  With one process (``spec`` None) every method is the plain 1-process
  step, so the runner calls them unconditionally.
  """

  def __init__(self, spec):
    self.spec = spec
    self.index, self.count = 0, 1
    if spec is not None:
      import jax  # pylint: disable=g-import-not-at-top
      self.index, self.count = jax.process_index(), jax.process_count()

  @property
  def multi(self) -> bool:
    return self.count > 1

  @property
  def is_writer(self) -> bool:
    """Whether this process writes results, the model and plots, and prints."""
    return self.index == 0

  def describe(self) -> dict:
    """results.json's record of where the run ran."""
    import jax  # pylint: disable=g-import-not-at-top
    return dict(num_processes=self.count, num_devices=jax.device_count())

  # -- agreement --------------------------------------------------------

  def _agree(self, error: BaseException | None) -> None:
    """Every process learns whether any failed; the failed ones re-raise
    their error, the others raise `ProcessFailed` with the first one's."""
    from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
    text = '' if error is None else config_check.one_line(error)
    blob = np.frombuffer(text.encode('utf-8'), np.uint8)
    every, bounds = distributed.all_concat(blob)
    if error is not None:
      raise error
    for p in range(self.count):
      part = every[bounds[p]:bounds[p + 1]]
      if part.size:
        raise ProcessFailed(f'process {p} of {self.count} failed: '
                            f'{bytes(part).decode("utf-8", "replace")}')

  @contextlib.contextmanager
  def agreed(self):
    """A block that fails on every process if it fails on any (a user
    error on one process must not leave the others waiting)."""
    if not self.multi:
      yield
      return
    try:
      yield
    except _user_errors() as e:
      self._agree(e)
    self._agree(None)

  def barrier(self) -> None:
    if self.multi:
      self._agree(None)

  def total(self, count: int) -> int:
    """The sum of ``count`` over the processes."""
    if not self.multi:
      return int(count)
    from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
    return int(distributed.all_sum([count])[0])

  # -- workdir ----------------------------------------------------------

  def prepare_workdir(self, workdir: str, overwrite: bool, checkpoints: bool):
    """`workdir.prepare` on process 0; the others get its state. With
    ``checkpoints``, every process must see process 0's checkpoints."""
    from linjax.cli import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
    if not self.multi:
      return workdir_lib.prepare(workdir, overwrite)
    from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
    from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
    run = None
    with self.agreed():
      if self.is_writer:
        run = workdir_lib.prepare(workdir, overwrite)
    finished = distributed.all_max([bool(run and run.finished)])[0]
    if run is None:
      run = workdir_lib.State(path=workdir, finished=bool(finished),
                              checkpoints=False)
    if checkpoints:
      latest = checkpoint.latest_epoch(run.join(workdir_lib.CHECKPOINTS))
      seen, _ = distributed.all_concat([-1 if latest is None else latest])
      if len(set(seen.tolist())) > 1:
        raise ConfigError(
            f'--workdir={workdir}: the processes see different checkpoints '
            f'(latest epoch by process: {seen.tolist()}, -1: none); put '
            '--workdir on a file system every process sees, or set '
            '--config.train.checkpoint_every=0.')
    return run

  def forget_finished_run(self, run) -> None:
    """`workdir.forget_finished_run` (process 0), seen by every process."""
    from linjax.cli import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
    if self.is_writer:
      workdir_lib.forget_finished_run(run)
    self.barrier()

  def remove_checkpoints(self, directory: str) -> int:
    """`checkpoint.remove` (process 0) before every process goes on."""
    from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
    freed = checkpoint.remove(directory) if self.is_writer else 0
    self.barrier()
    return freed

  # -- data -------------------------------------------------------------

  def load_splits(self, config) -> run_data.Splits:
    """This process's part of each split of the 1-process run."""
    if not self.multi:
      return run_data.load_splits(config)
    from linjax.cli import sharded_splits  # pylint: disable=g-import-not-at-top
    return sharded_splits.load(config, self)

  def fit_transform(self, featurizer, texts):
    """`featurizer.fit_transform` with the document frequencies of every
    process's texts."""
    if not self.multi:
      return featurizer.fit_transform(texts)
    from linjax.engine import distributed  # pylint: disable=g-import-not-at-top

    def summed(df, num_docs):
      total = distributed.all_sum(np.append(df, num_docs))
      return np.rint(total[:-1]).astype(np.int64), int(round(total[-1]))

    featurizer.fit(texts)
    featurizer.combine_document_frequencies(summed)
    return featurizer.transform(texts)

  # -- evaluation -------------------------------------------------------

  def evaluate(self, params, x, y, loss='softmax') -> dict:
    """dict(loss, accuracy) over every process's (x, y); the mean of
    ``loss``, the trained loss (`linjax.engine.options.train_loss`)."""
    from linjax.engine import scoring  # pylint: disable=g-import-not-at-top
    m = scoring.evaluate(params, x, y, loss) if x.num_docs else dict(
        loss=0.0, accuracy=0.0)
    if not self.multi:
      return dict(loss=float(m['loss']), accuracy=float(m['accuracy']))
    return scoring.over_processes(m, x.num_docs)

  def gather_rows(self, *arrays):
    """Every process's rows of each array, one after another in process
    order (the arrays of the 1-process run)."""
    if not self.multi:
      return arrays
    from linjax.engine import distributed  # pylint: disable=g-import-not-at-top
    gathered = []
    for a in arrays:
      a = np.asarray(a)
      flat, _ = distributed.all_concat(a.reshape(-1))
      gathered.append(flat.reshape((-1,) + a.shape[1:]))
    return tuple(gathered)
