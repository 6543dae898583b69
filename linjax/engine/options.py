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

from linjax.core.errors import Checker
from linjax.core.errors import ConfigError

OPTIMIZERS = ('sgd', 'adagrad', 'adam')
SCHEDULES = ('constant', 'linear', 'exponential', 'cosine', 'warmup_cosine')
UPDATES = ('auto', 'sparse', 'dense')
METRICS = ('accuracy', 'loss')
CLASS_WEIGHTS = ('none', 'balanced')
LOSSES = ('softmax', 'sigmoid')


@dataclasses.dataclass(frozen=True)
class OptimizerOptions:
  """The optimiser (see linjax/engine/optimizers.py for the optax chain).

  Attributes:
    name: sgd | adagrad | adam.
    learning_rate: peak step size (> 0). The loss is a batch mean and the
      features are L2-normalised, so plain SGD takes large steps.
    schedule: constant | linear (to zero, fastText's) | exponential | cosine
      | warmup_cosine.
    momentum: sgd only, in [0, 1).
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
    c.choice('name', OPTIMIZERS)
    c.number('learning_rate', lo=0, lo_open=True)
    c.choice('schedule', SCHEDULES)
    c.fraction('momentum')
    c.fraction('warmup_fraction')
    c.number('decay_rate', lo=0, hi=1, lo_open=True)
    c.number('weight_decay', lo=0)
    c.number('clip_norm', lo=0)
    if (not c.problems and self.momentum > 0 and self.name != 'sgd'):
      c.fail('momentum', f'must be 0 with optimizer.name={self.name!r} '
             '(momentum applies to sgd only)', self.momentum)
    c.done()

  @property
  def has_row_state(self) -> bool:
    """Whether the optimiser keeps per-row state (momentum, Adagrad, Adam)."""
    return self.name != 'sgd' or self.momentum > 0


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
      ``-loss ova``; labels a multi-hot [N, C] in {0, 1}). With sigmoid the
      validation 'accuracy' is the fraction of documents whose top-scored
      label is one of theirs (P@1, which is accuracy for one label each).
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
    c.choice('loss', LOSSES)
    if not c.problems and self.loss == 'sigmoid' and (
        self.class_weight != 'none'):
      c.fail('class_weight', "must be 'none' with train.loss='sigmoid' (a "
             'document has several classes or none; pass sample_weight to '
             'fit instead)', self.class_weight)
    c.done()


def check_decay(optimizer: OptimizerOptions, l2: float) -> None:
  """Raises `ConfigError` if one step would multiply W by ``<= 0``.

  A step shrinks W by ``1 - lr * (weight_decay + 2 l2)`` (2 l2 with plain
  SGD, where the penalty acts as a decay); at 0 or below every weight flips.
  """
  decay = optimizer.weight_decay + (2.0 * l2 if optimizer.name == 'sgd'
                                    else 0.0)
  if optimizer.learning_rate * decay >= 1.0:
    raise ConfigError(
        f'train.l2 / optimizer.weight_decay too large for optimizer.'
        f'learning_rate={optimizer.learning_rate}: each step would multiply '
        f'W by 1 - lr * decay <= 0.')
