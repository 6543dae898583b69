"""The engine's typed options: what `fit`, `precompile` and `sweep` read.

Two frozen dataclasses, each validated in one place (``__post_init__``, with
`linjax.core.errors.Checker`): a bad value raises `ConfigError` naming the
field as ``optimizer.x`` / ``train.x``, the key of the runner's config. Their
defaults are the library's defaults; `experiments/configs/default.py` is
built from them.

  OptimizerOptions  the optax optimiser and learning-rate schedule
  TrainOptions      the loop: batches, epochs, L2, seed, early stopping,
                    update path, checkpoints, steps per compiled call

Use `dataclasses.replace(options, field=value)` for a variant.
"""

from __future__ import annotations

import dataclasses

from linjax.core import losses
from linjax.core.errors import Checker
from linjax.core.errors import ConfigError
from linjax.core.named_objects import NameNotFound
from linjax.engine import optimizers

SCHEDULES = ('constant', 'linear', 'exponential', 'cosine', 'warmup_cosine')
UPDATES = ('auto', 'sparse', 'dense')
METRICS = ('accuracy', 'loss')
CLASS_WEIGHTS = ('none', 'balanced')


# Fields that only some optimisers (losses) read: a table entry lists those
# it takes in its ``options``.
_OPTIMIZER_SPECIFIC = ('momentum',)
_LOSS_SPECIFIC = ('label_smoothing',)


def _takers(table, field: str) -> str:
  names = [n for n in (table.optimizer_names() if table is optimizers
                       else table.loss_names())
           if field in (optimizers.get_optimizer(n) if table is optimizers
                        else table.get_loss(n)).options]
  return ', '.join(names)


@dataclasses.dataclass(frozen=True)
class OptimizerOptions:
  """The optimiser (see linjax/engine/optimizers.py for the optax chain).

  Attributes:
    name: sgd | adagrad | adam | lion | adabelief (the table of
      linjax/engine/optimizers.py), a name registered there, or MODULE:NAME
      of an optax transformation of yours (e.g. ``optax:scale_by_lion``):
      its updates point along the gradient, linjax applies the learning
      rate, schedule and weight decay; on the sparse path it must be
      element-wise (its state of the rows a step touches is updated).
    learning_rate: peak step size (> 0). The loss is a batch mean and the
      features are L2-normalised, so plain SGD takes large steps.
    schedule: constant | linear (to zero, fastText's) | exponential | cosine
      | warmup_cosine.
    momentum: sgd only (the optimisers that take it), in [0, 1).
    warmup_fraction: warmup_cosine only: the fraction of the run warming up.
    decay_rate: exponential only: the learning-rate factor over the run.
    weight_decay: decoupled weight decay (AdamW style) of W, >= 0.
    clip_norm: global gradient-norm clipping; 0 turns it off.
  """

  name: str = 'sgd'
  learning_rate: float = 28.0
  schedule: str = 'linear'
  momentum: float = 0.0
  warmup_fraction: float = 0.05
  decay_rate: float = 0.1
  weight_decay: float = 0.0
  clip_norm: float = 0.0

  def __post_init__(self):
    c = Checker(self, 'optimizer')
    try:
      entry = optimizers.get_optimizer(self.name)
    except NameNotFound as e:
      c.fail('name', f'must name an optimizer: {e}')
      entry = None
    c.number('learning_rate', lo=0, lo_open=True)
    c.choice('schedule', SCHEDULES)
    c.fraction('momentum')
    c.fraction('warmup_fraction')
    c.number('decay_rate', lo=0, hi=1, lo_open=True)
    c.number('weight_decay', lo=0)
    c.number('clip_norm', lo=0)
    if entry is not None and not c.problems:
      for field in _OPTIMIZER_SPECIFIC:
        value = getattr(self, field)
        if value and field not in entry.options:
          c.fail(field, f'must be 0 with optimizer.name={self.name!r} '
                 f'({field} applies to '
                 f'{_takers(optimizers, field) or "no optimizer"} only)',
                 value)
    c.done()


@dataclasses.dataclass(frozen=True)
class TrainOptions:
  """The training loop.

  Attributes:
    batch_size: documents per step, at most (D).
    token_budget: feature slots per step (T, the static shape); a longer
      document raises it for the run (linjax/engine/packing.py).
    docs_per_step: k; where T holds fewer than k documents of the corpus's
      mean length, `linjax.engine.training.fit` raises T to k of them
      (rounded up to a power of two), so that a step of long documents
      still averages over about as many documents as one of short ones: the
      loss is a batch mean, so each document's step is the learning rate
      over the documents in its step. 0: off (T is token_budget).
    epochs: passes over the training data (at most; see max_steps).
    max_steps: `linjax.engine.training.fit` ends after ``epochs`` passes or,
      rounding up to a whole pass, once it has taken this many steps,
      whichever comes first; a pass counts ``max(N / batch_size, nnz / T)``
      steps, the fewest its packing can take. SGD's progress is counted in
      steps: a large corpus needs fewer passes than a small one. 0: always
      ``epochs`` passes.
    l2: the L2 penalty ``l2 * sum(W ** 2)`` (the bias is not penalised).
    seed: the order of documents and steps.
    patience: early stopping after this many epochs without a better
      validation ``metric`` (the best epoch's params are returned); 0: off.
    metric: accuracy | loss, the validation metric of early stopping.
    update_path: auto | sparse | dense, how a step updates W (sparse: only
      the rows its documents touch); auto is dense for F <= 4096 features.
    checkpoint_every: epochs between checkpoints (with a checkpoint_dir);
      0: none.
    checkpoint_seconds: and at least this many seconds since the training
      began or the last checkpoint (0: every ``checkpoint_every`` epochs;
      a checkpoint of a 72 MB W takes ~0.3 s, so a run of a few seconds
      would spend more on checkpoints than an interrupt could cost it; as
      TensorFlow's ``save_checkpoints_secs``).
    steps_per_call: K, steps per call of the compiled program (its shapes
      do not depend on the number of steps, so it compiles while the host
      featurises).
    class_weight: none | balanced: weigh each document's loss by
      ``N / (classes * count of its class)`` (scikit-learn's 'balanced'), so
      that every class carries the same total weight.
    loss: softmax (one class per document, int labels [N]) | sigmoid
      (multi-label: a binary logistic regression per label, fastText's
      ``-loss ova``; labels a multi-hot [N, C] in {0, 1}), any name of the
      table of linjax/core/losses.py (``losses.loss_names()``), a
      ``MODULE:NAME`` of a function of yours, or the function itself (kept
      as its table name). With a multi-label loss the validation
      'accuracy' is the fraction of documents whose top-scored label is one
      of theirs (P@1, which is accuracy for one label each).
    label_smoothing: a in [0, 1): the softmax loss against the targets
      ``(1 - a) onehot(y) + a / C`` (`optax.smooth_labels`); the losses
      that take it say so in their table entry (``Loss.options``). 0: off.
    max_host_mb: host memory for the packed steps, in MiB; when they would
      need more, they are written to a temporary folder chunk by chunk and
      each epoch reads them back K steps at a time (the same model, bit for
      bit; linjax/engine/spill.py). 0: a quarter of the memory available
      when training starts.
  """

  batch_size: int = 32
  token_budget: int = 512
  docs_per_step: int = 8
  epochs: int = 8
  max_steps: int = 10000
  l2: float = 0.0
  seed: int = 0
  patience: int = 0
  metric: str = 'accuracy'
  update_path: str = 'auto'
  checkpoint_every: int = 1
  checkpoint_seconds: float = 30.0
  steps_per_call: int = 128
  class_weight: str = 'none'
  max_host_mb: int = 0
  loss: str = 'softmax'
  label_smoothing: float = 0.0

  def __post_init__(self):
    c = Checker(self, 'train')
    c.integer('batch_size', lo=1)
    c.integer('token_budget', lo=1)
    c.integer('docs_per_step', lo=0)
    c.integer('epochs', lo=1)
    c.integer('max_steps', lo=0)
    c.number('l2', lo=0)
    c.integer('seed', lo=0)
    c.integer('patience', lo=0)
    c.choice('metric', METRICS)
    c.choice('update_path', UPDATES)
    c.integer('checkpoint_every', lo=0)
    c.number('checkpoint_seconds', lo=0)
    c.integer('steps_per_call', lo=1)
    c.choice('class_weight', CLASS_WEIGHTS)
    c.integer('max_host_mb', lo=0)
    c.fraction('label_smoothing')
    try:
      loss = losses.get_loss(self.loss)
      if loss != losses.get_loss(loss.name):
        c.fail('loss', f'must be a name, a function or a Loss of the table; '
               f'this Loss {loss.name!r} is not the table\'s (bound '
               'settings: set them as train fields, e.g. '
               'train.label_smoothing; another function: register it '
               'under another name)')
        loss = None
      else:
        object.__setattr__(self, 'loss', loss.name)  # a name: JSON, hashable
    except NameNotFound as e:
      c.fail('loss', f'must name a loss: {e}')
      loss = None
    if loss is not None and not c.problems:
      for field in _LOSS_SPECIFIC:
        value = getattr(self, field)
        if value and field not in loss.options:
          c.fail(field, f'must be 0 with train.loss={loss.name!r} ({field} '
                 f'applies to {_takers(losses, field) or "no loss"} only)',
                 value)
      if loss.multi_label and self.class_weight != 'none':
        c.fail('class_weight', f"must be 'none' with the multi-label "
               f'train.loss={loss.name!r} (a document has several classes '
               'or none; pass sample_weight to fit instead)',
               self.class_weight)
    c.done()


def train_loss(training: TrainOptions) -> losses.Loss:
  """The `losses.Loss` that ``training`` trains: its table entry with the
  loss options of ``training`` (e.g. label smoothing) bound."""
  return losses.get_loss(training.loss).with_settings(
      **{field: getattr(training, field) for field in _LOSS_SPECIFIC})


def check_decay(optimizer: OptimizerOptions, l2: float) -> None:
  """Raises `ConfigError` if one step would multiply W by ``<= 0``.

  A step shrinks W by ``1 - lr * (weight_decay + 2 l2)`` (2 l2 with plain
  SGD, where the penalty acts as a decay); at 0 or below every weight flips.
  """
  decay = optimizer.weight_decay + (2.0 * l2 if optimizers.is_plain(optimizer)
                                    else 0.0)
  if optimizer.learning_rate * decay >= 1.0:
    raise ConfigError(
        f'train.l2 / optimizer.weight_decay too large for optimizer.'
        f'learning_rate={optimizer.learning_rate}: each step would multiply '
        f'W by 1 - lr * decay <= 0.')
