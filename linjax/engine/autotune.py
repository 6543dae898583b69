"""Autotuning in one compiled program: successive halving over vmapped batches.

Shapes: N documents, F features (F' of them used by the training split), C
classes, M configurations per vmapped batch.

fastText's autotune trains one configuration after another. Here a batch of
M configurations (learning rate, L2, with one epoch count per batch) trains
as ONE vmapped program (`run_loop.prepare` with M (lr, l2) pairs, as
`hyper_sweep.sweep` does), and successive halving decides what to train:

* A bracket draws configurations at random: learning rate log-uniform in
  ``learning_rate``, L2 zero with probability ``l2_zero`` and log-uniform in
  ``l2`` otherwise, the epoch count from ``epochs``.
* Rung r of R trains its configurations on a stratified ``eta^-(R-1-r)``
  share of the training split (the last rung on all of it) and scores them on
  the whole validation split; the best ``1/eta`` go on to the next rung, which
  has ``eta`` times the data. R is the largest (at most ``max_rungs``) that
  leaves the first rung ``min_docs`` documents. The resource is the number
  of documents (scikit-learn's HalvingRandomSearchCV default), not epochs:
  the epoch count is searched, and its linear schedule depends on it.
* Time: the first batch measures the seconds per model-epoch; a bracket
  then draws as many first-rung configurations as its rungs can train in
  85 % of the time left (each rung costs about the same), later rungs keep
  fewer survivors if their predicted time would overrun (at least one, so
  that a model trained on all the data is chosen), and another bracket
  starts while a fifth of the budget is left.
  With ``num_configs`` set the plan is fixed and the clock is not consulted:
  the choice is then a function of the data, the options and the seed alone
  (`AutotuneResult.plan` records what a timed run did).
* The winner is the best validation ``accuracy`` (then loss) among the
  configurations trained on the whole training split: exactly the model that
  `training.fit` trains with that configuration and the same seed, which the
  result returns.

Divergence and resuming (the runner's contract, `linjax autotune`):
``epoch_check(epoch, mean training loss)`` is called for every epoch of
every trial, as `training.fit`'s callback is; if it raises
`TrainingDiverged` the trial is marked ``diverged`` (its message) and
never chosen nor promoted, so the chosen configuration trains under the
same rule. ``on_trials(trials)`` receives each batch's trials as soon as it
has trained. ``previous`` trials (from an interrupted search with the same
data, options and seed) are taken instead of training those
configurations again: the draws are a function of the seed, so a rerun
meets the same configurations, and its clock starts at the time the
previous trials had used. If the chosen trial was a previous one, its
model is trained once more at the end.

Memory: the M states hold only the F' rows of W that training touches (the
others stay zero, exactly: healthtweets has 98,625 of 2^20), and M is at most
``max_models`` and what fits in ``memory_mb``. Compilation: one program per
batch width; widths are powers of two (a short batch repeats its first
configuration), and the slot budget is fixed, so every rung reuses them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import numpy as np

from linjax.core import model
from linjax.core.losses import get_loss
from linjax.core.errors import ConfigError
from linjax.data.corpus import multilabel_split
from linjax.data.corpus import stratified_split
from linjax.engine import chunk_program
from linjax.engine import packing
from linjax.engine import run_loop
from linjax.engine import step as step_lib
from linjax.engine.autotune_options import AutotuneOptions
from linjax.engine.options import check_decay
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.engine.training import TrainingDiverged
from linjax.text.csr import CsrFeatures

Params = model.Params


@dataclasses.dataclass
class AutotuneResult:
  """trials: one dict per (configuration, rung) trained, in order: bracket,
  rung, fraction, docs, lr, l2, epochs, val_accuracy, val_loss, train_loss,
  elapsed (seconds since the start when its batch finished).
  best: the chosen full-data trial. params: its model (float32 [F, C]).
  plan: rungs, fractions, batch width M, F', first-rung configurations per
  bracket (pass them as ``num_configs`` / ``brackets`` to replay the run).
  """

  trials: list
  best: dict
  params: Params
  plan: dict
  seconds: float
  compile_seconds: float


def used_features(train_x: CsrFeatures, *others: CsrFeatures):
  """(used ids [F'], train_x and ``others`` on the F' columns train_x uses).

  Entries of ``others`` outside them are dropped: their rows of W never
  change from zero in training, so scores are unchanged.
  """
  used, inverse = np.unique(train_x.ids, return_inverse=True)
  out = [CsrFeatures(train_x.indptr, inverse.astype(np.int32),
                     train_x.weights, int(used.shape[0]))]
  for x in others:
    pos = np.minimum(np.searchsorted(used, x.ids), max(used.shape[0] - 1, 0))
    keep = (used[pos] == x.ids) if used.size else np.zeros(x.ids.shape, bool)
    counts = np.add.reduceat(keep, x.indptr[:-1]) if x.ids.size else None
    lengths = np.where(np.diff(x.indptr) > 0, counts, 0) if (
        counts is not None) else np.zeros(x.num_docs, np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out.append(CsrFeatures(indptr, pos[keep].astype(np.int32),
                           x.weights[keep], int(used.shape[0])))
  return used, out


def l2_cap(optimizer: OptimizerOptions, training: TrainOptions,
           num_features: int, num_classes: int, total_steps: int,
           max_lr: float) -> float:
  """The largest L2 for which a run of ``total_steps`` at learning rates up to
  ``max_lr`` keeps the step's global scale from underflowing.

  Beyond it `step.with_steps` makes every step check for a rescale, which
  under vmap computes both branches (a full copy of W per step). Such an L2
  would shrink W by more than 1e-30 over the run: not a useful setting.
  """
  spec = step_lib.make_spec(optimizer, dataclasses.replace(training, l2=1.0),
                            num_features, num_classes, 0, l2_nonzero=True)
  if spec.l2_mode != 'scale' or step_lib.with_steps(
      spec, total_steps, max_lr, 0.0).rescale:
    return math.inf
  allowed = (-math.expm1(math.log(1e-30) / max(total_steps, 1)) / max_lr -
             spec.weight_decay)
  return max(allowed / 2.0, 0.0) * 0.99


def _batch_width(n: int, limit: int) -> int:
  return min(1 << max(n - 1, 0).bit_length(), limit)


def _widths(n: int, limit: int) -> list:
  """Batch widths that can hold ``n`` configurations: powers of two, M."""
  out, w = [], _batch_width(n, limit)
  while w < limit:
    out.append(w)
    w *= 2
  return out + [limit]


class _Search:
  """The state of one `autotune` call (see the module docstring)."""

  def __init__(self, x, y, num_classes, val_x, val_y, optimizer, training,
               options, log, epoch_check=None, on_trials=None, previous=()):
    self.epoch_check = epoch_check
    self.on_trials = on_trials or (lambda trials: None)
    self.previous = {_key(t): dict(t, resumed=True) for t in previous}
    # The clock resumes where the previous trials left it.
    self.start = time.perf_counter() - max(
        [float(t.get('elapsed') or 0.0) for t in previous] + [0.0])
    self.options, self.log = options, log or (lambda message: None)
    self.y, self.num_classes, self.val_y = y, num_classes, val_y
    self.num_features = x.num_features
    self.used, (self.x, self.val_x) = used_features(x, val_x)
    longest = int(x.row_lengths().max()) if x.num_docs else 1
    # Fixed across rungs: the update path of the full F (as fit would
    # choose) and a slot budget that fits the longest document.
    self.training = dataclasses.replace(
        training, update_path=step_lib.choose_update(training.update_path,
                                                     x.num_features),
        token_budget=packing.slot_budget(training.token_budget, longest),
        patience=0, checkpoint_every=0)
    self.optimizer = optimizer
    lr = optimizer.learning_rate
    self.lr_range = tuple(options.learning_rate) or (lr / 16.0, lr * 4.0)
    spec = step_lib.make_spec(optimizer, self.training, self.x.num_features,
                              num_classes, 0, l2_nonzero=True)
    state_bytes = sum(
        math.prod(a.shape) * np.dtype(a.dtype).itemsize
        for a in _leaves(chunk_program.abstract_state(spec)))
    self.width = int(max(1, min(options.max_models, options.memory_mb *
                                2**20 // max(state_bytes, 1))))
    n = x.num_docs
    self.num_rungs = int(max(1, min(options.max_rungs, 1 + math.floor(
        math.log(max(n / options.min_docs, 1.0)) / math.log(options.eta)))))
    self.fractions = [options.eta ** -(self.num_rungs - 1 - r)
                      for r in range(self.num_rungs)]
    split = (multilabel_split if get_loss(self.training.loss).multi_label
             else stratified_split)
    self.subsets = [None if f >= 1 else np.sort(split(
        y, f, options.seed + r)[1]) for r, f in enumerate(self.fractions)]
    steps = run_loop.pack_steps(self.x, y, self.training, spec, 1, 0).num_steps
    self.l2_caps = {e: l2_cap(optimizer, self.training, self.x.num_features,
                              num_classes, steps * e, self.lr_range[1])
                    for e in options.epochs}
    self.trials, self.best, self.best_params = [], None, None
    self.compile_seconds = 0.0
    self.timings = []    # (model-epochs of data, seconds) of each batch
    self.compiles = {}   # batch width -> seconds its compilation took
    self.plan = dict(rungs=self.num_rungs, fractions=self.fractions,
                     batch_width=self.width, features_used=self.x.num_features,
                     state_mb=state_bytes / 2**20, num_configs=[],
                     compiles=[])
    fractions = ', '.join(f'{f:.3g}' for f in self.fractions)
    self.log(f'autotune: {self.num_rungs} rung(s) of [{fractions}] of '
             f'{n} documents, {self.width} configurations per vmapped batch, '
             f'{self.x.num_features} of {x.num_features} feature rows '
             f'({state_bytes / 2**20:.1f} MB a model)')

  # -- timing ---------------------------------------------------------------

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def left(self) -> float:
    return self.options.time_budget - self.elapsed()

  def speed(self) -> tuple[float, float]:
    """(seconds a batch costs anyway, seconds per model-epoch of all the
    data): a least-squares line through the batches timed so far."""
    units, seconds = (np.asarray(v, np.float64) for v in zip(*self.timings))
    if np.ptp(units) > 0:
      slope, base = np.polyfit(units, seconds, 1)
      if slope > 0 and base >= 0:
        return float(base), float(slope)
    return 0.0, float(seconds.sum() / units.sum())

  def batch_seconds(self, width: int, fraction: float, epochs: int) -> float:
    base, rate = self.speed()
    return base + rate * width * fraction * epochs

  def choose_width(self, n: int, fraction: float, epochs: int) -> int:
    """The batch width for ``n`` configurations: the smallest power of two
    that holds them, or a wider one already compiled if its padding costs
    less than a compilation (small corpora: compiling dominates)."""
    if not self.timings or not self.compiles:
      return _batch_width(n, self.width)
    compile_s = max(self.compiles.values())
    cost = {w: self.batch_seconds(w, fraction, epochs) +
            (0.0 if w in self.compiles else compile_s)
            for w in _widths(n, self.width)}
    return min(cost, key=lambda w: (cost[w], w))

  # -- drawing configurations -------------------------------------------------

  def draw(self, rng, epochs: int) -> dict:
    lo, hi = self.lr_range
    lr = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    l2 = 0.0
    if rng.random() >= self.options.l2_zero:
      l2_lo, l2_hi = self.options.l2
      l2_hi = min(l2_hi, self.l2_caps[epochs])
      if l2_hi >= l2_lo:
        l2 = float(math.exp(rng.uniform(math.log(l2_lo), math.log(l2_hi))))
    optimizer = dataclasses.replace(self.optimizer, learning_rate=lr)
    try:
      check_decay(optimizer, l2)
    except ConfigError:   # a huge learning rate leaves no room for L2
      l2 = 0.0
      check_decay(optimizer, l2)
    return dict(lr=lr, l2=l2, epochs=int(epochs))

  # -- training ---------------------------------------------------------------

  def train(self, configs, bracket: int, rung: int) -> list:
    """The trials of ``configs`` (same epochs): those in ``previous`` as
    they were, the others trained as one vmapped batch."""
    known = [self.previous.get(_key(dict(c, bracket=bracket, rung=rung)))
             for c in configs]
    fresh = [c for c, t in zip(configs, known) if t is None]
    trained = iter(self._train(fresh, bracket, rung) if fresh else ())
    trials = [t if t is not None else next(trained) for t in known]
    reused = [t for t in known if t is not None]
    if reused:
      if not fresh and reused[0].get('batch_units'):   # the speed it had
        self.timings.append((reused[0]['batch_units'],
                             reused[0]['batch_seconds']))
      for trial in reused:
        self.trials.append(trial)
        if rung == self.num_rungs - 1 and _better(trial, self.best):
          self.best, self.best_params = trial, None   # trained at the end
    return trials

  def _diverged(self, epoch_losses) -> str:
    """'' or the `epoch_check` message of the first epoch it refuses."""
    if self.epoch_check is None:
      return ''
    for epoch, loss in enumerate(epoch_losses, 1):
      try:
        self.epoch_check(epoch, float(loss))
      except TrainingDiverged as e:
        return ' '.join(str(e).split())
    return ''

  def _train(self, configs, bracket: int, rung: int,
             record: bool = True) -> list:
    """Trains ``configs`` (same epochs) as one vmapped batch; their trials
    (with ``record``: kept, timed and passed to ``on_trials``)."""
    x, y = self.x, self.y
    if self.subsets[rung] is not None:
      x, y = x.take(self.subsets[rung]), y[self.subsets[rung]]
    epochs = configs[0]['epochs']
    dummy = dict(configs[0])
    n = len(configs)
    if not any(c['l2'] > 0 for c in configs) and n < self.width:
      # A padding slot with L2 > 0 keeps the program of the other batches
      # (an L2-free batch compiles another, without the global scale: l2
      # 0 under the scale is exact, 1 - lr * 0 = 1); its result is unused.
      dummy['l2'] = min(self.options.l2[0], self.l2_caps[epochs])
      n += 1
    width = self.choose_width(n, self.fractions[rung], epochs)
    padded = list(configs) + [dummy] * (width - len(configs))
    training = dataclasses.replace(self.training, epochs=epochs)
    started = time.perf_counter()
    run = run_loop.prepare(x, y, self.num_classes, self.optimizer, training,
                           learning_rates=[c['lr'] for c in padded],
                           l2s=[c['l2'] for c in padded],
                           data_parallel=False)
    per_epoch = [l for _, l, _ in run_loop.epochs(run)]
    losses = np.concatenate(per_epoch, axis=1)
    trials = []
    for i, config in enumerate(configs):
      trial = dict(bracket=bracket, rung=rung,
                   fraction=self.fractions[rung], docs=int(x.num_docs),
                   **config, val_accuracy=math.nan, val_loss=math.nan,
                   train_loss=float(losses[i, -run.packed.num_steps:].mean()))
      diverged = self._diverged([l[i].mean() for l in per_epoch])
      if diverged:
        trial['diverged'] = diverged
      elif np.all(np.isfinite(losses[i])):
        m = run_loop.validation_metrics(run.state, self.val_x, self.val_y,
                                        model_index=i, loss=run.spec.loss)
        trial.update(val_accuracy=m['accuracy'], val_loss=m['loss'])
      trials.append(trial)
      if not record or (rung == self.num_rungs - 1 and
                        _better(trial, self.best)):
        if record:
          self.best = trial
        self.best_params = (np.asarray(run.state.V[i] * run.state.scale[i],
                                       np.float32),
                            np.asarray(run.state.b[i], np.float32))
    if not record:
      return trials
    seconds = time.perf_counter() - started
    if run.compile_seconds > 0:
      self.compiles[width] = run.compile_seconds
      self.plan['compiles'].append(dict(width=width, epochs=epochs,
                                        rung=rung,
                                        seconds=run.compile_seconds))
    self.compile_seconds += run.compile_seconds
    self.timings.append((width * self.fractions[rung] * epochs,
                         seconds - run.compile_seconds))
    for trial in trials:
      trial.update(elapsed=self.elapsed(), batch_units=self.timings[-1][0],
                   batch_seconds=self.timings[-1][1])
    self.trials.extend(trials)
    self.on_trials(trials)
    return trials

  def train_all(self, configs, bracket: int, rung: int,
                timed: bool = False) -> list:
    """Trains ``configs`` grouped by epochs, in batches of at most M; with
    ``timed``, no batch starts once the budget is spent (the first always
    does): a speed estimate that is off must not outlast the budget."""
    out = []
    for epochs in sorted({c['epochs'] for c in configs}):
      group = [c for c in configs if c['epochs'] == epochs]
      for i in range(0, len(group), self.width):
        if timed and out and self.left() <= 0:
          return out
        out.extend(self.train(group[i:i + self.width], bracket, rung))
    return out

  # -- one bracket ------------------------------------------------------------

  def cost(self, configs, fraction: float) -> float:
    """Predicted seconds to train ``configs`` as `train_all` batches them
    (compilations of new widths included), from the measured rate."""
    compile_s = max(self.compiles.values(), default=0.0)
    total, widths = 0.0, set(self.compiles)
    for epochs in sorted({c['epochs'] for c in configs}):
      n = sum(c['epochs'] == epochs for c in configs)
      for i in range(0, n, self.width):
        w = self.choose_width(min(self.width, n - i), fraction, epochs)
        total += self.batch_seconds(w, fraction, epochs)
        if w not in widths:
          total, widths = total + compile_s, widths | {w}
    return total

  def affordable(self, seconds: float) -> int:
    """First-rung configurations whose bracket fits in ``seconds``: each rung
    costs about n0 f0 E (n_r = n0 / eta^r configurations on f0 eta^r of the
    data), E the mean epoch count, plus padding and a few compilations."""
    base, rate = self.speed()
    compile_s = max(self.compiles.values(), default=0.0)
    mean_epochs = float(np.mean(self.options.epochs))
    # Each rung trains a configuration on its share of the data, and its
    # batches cost ``base`` each whatever their size (M configurations).
    per_config = self.num_rungs * (self.fractions[0] * mean_epochs * rate +
                                   base / self.width)
    # Batches: about one per epoch count and rung, more when they are wide.
    fixed = (len(self.options.epochs) * self.num_rungs * base + 2 * compile_s)
    return int(max(seconds - fixed, 0.0) // max(1.25 * per_config, 1e-9))

  def bracket(self, b: int) -> bool:
    """Runs bracket ``b``; False if the time left does not allow it."""
    options, fixed = self.options, self.options.num_configs > 0
    rng = np.random.default_rng([options.seed, b])
    cycle = [int(e) for e in rng.permutation(options.epochs)]
    trials = []
    if fixed:
      n = options.num_configs
    else:
      if not self.timings:   # the first batch measures the speed
        trials = self.train([self.draw(rng, cycle[0])
                             for _ in range(self.width)], b, 0)
      n = self.affordable(0.85 * self.left()) + len(trials)
      if not trials and n < options.eta ** (self.num_rungs - 1):
        return False
    configs = [self.draw(rng, cycle[i % len(cycle)])
               for i in range(len(trials), n)]
    trials += self.train_all(configs, b, 0, timed=not fixed)
    self.plan['num_configs'].append(len(trials))
    for rung in range(1, self.num_rungs):
      keep = max(1, math.ceil(len(trials) / options.eta))
      ranked = sorted((t for t in trials if np.isfinite(t['val_accuracy'])),
                      key=_rank_key)
      survivors = [dict(lr=t['lr'], l2=t['l2'], epochs=t['epochs'])
                   for t in ranked[:keep]]
      if not fixed:   # keep what fits in the time left (at least one)
        while len(survivors) > 1 and self.cost(
            survivors, self.fractions[rung]) > self.left():
          survivors.pop()
      if not survivors:
        return True
      self.log(f'autotune: bracket {b}, rung {rung}: {len(survivors)} '
               f'configuration(s) on {self.fractions[rung]:.3g} of the data '
               f'({self.elapsed():.1f} s)')
      trials = self.train_all(survivors, b, rung)
    return True

  def run(self) -> AutotuneResult:
    options, b = self.options, 0
    while self.bracket(b):
      b += 1
      if options.brackets and b >= options.brackets:
        break
      if options.num_configs == 0 and self.left() < 0.2 * options.time_budget:
        break
    if self.best is None or not np.isfinite(self.best['val_accuracy']):
      raise TrainingDiverged(0, 0, math.nan, self.lr_range[0])
    if self.best_params is None:   # chosen from the previous trials
      self._train([dict(lr=self.best['lr'], l2=self.best['l2'],
                        epochs=self.best['epochs'])], self.best['bracket'],
                  self.best['rung'], record=False)
    W = np.zeros((self.num_features, self.num_classes), np.float32)
    W[self.used] = self.best_params[0]
    return AutotuneResult(trials=self.trials, best=self.best,
                          params=Params(W, self.best_params[1]),
                          plan=self.plan, seconds=self.elapsed(),
                          compile_seconds=self.compile_seconds)


def _leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree_util.tree_leaves(tree)


def _key(trial: dict) -> tuple:
  """What identifies a trial across runs of one search."""
  return (int(trial['bracket']), int(trial['rung']), float(trial['lr']),
          float(trial['l2']), int(trial['epochs']))


def _rank_key(trial: dict):
  """Higher validation accuracy, then lower validation loss, first."""
  return (-trial['val_accuracy'], trial['val_loss'])


def _better(trial: dict, best: dict | None) -> bool:
  if not np.isfinite(trial['val_accuracy']):
    return False
  return best is None or _rank_key(trial) < _rank_key(best)


def autotune(train_x: CsrFeatures, train_y, num_classes: int, *,
             val_x: CsrFeatures, val_y,
             optimizer: OptimizerOptions = OptimizerOptions(),
             training: TrainOptions = TrainOptions(),
             options: AutotuneOptions = AutotuneOptions(),
             log: Callable[[str], None] | None = None,
             epoch_check: Callable[[int, float], None] | None = None,
             on_trials: Callable[[list], None] | None = None,
             previous=()) -> AutotuneResult:
  """Searches learning rate, L2 and epochs by successive halving (see above).

  Args:
    train_x, train_y: CsrFeatures [N, F] and int labels [N], or multi-hot
      uint8 [N, C] with ``training.loss='sigmoid'`` (multi-label: the
      validation "accuracy" that chooses is then P@1, as in `fit`'s history,
      and the rungs' subsets are stratified by each document's rarest label).
    num_classes: C.
    val_x, val_y: the validation split that chooses.
    optimizer, training: the base options; learning_rate, l2 and epochs are
      searched, every other option applies to all configurations.
    options: AutotuneOptions.
    log: called with a line of progress now and then.
    epoch_check: ``(epoch from 1, mean training loss)``, called for each
      epoch of each trial; raising `TrainingDiverged` excludes the trial
      (marked ``diverged``), as it stops `training.fit`.
    on_trials: called with each batch's new trials once it has trained.
    previous: trials of an interrupted run of the same search, taken
      instead of training their configurations again.

  Returns:
    AutotuneResult; ``best`` holds the chosen lr, l2 and epochs.

  Raises:
    TrainingDiverged: no configuration trained on all the data without
      diverging.
  """
  train_x.validate('train_x')
  val_x.validate('val_x')
  y = run_loop.check_labels(train_y, train_x.num_docs, num_classes, 'train_y',
                           training.loss)
  val_y = run_loop.check_labels(val_y, val_x.num_docs, num_classes, 'val_y',
                                training.loss)
  return _Search(train_x, y, num_classes, val_x, val_y, optimizer, training,
                 options, log, epoch_check, on_trials, previous).run()
