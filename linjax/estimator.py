"""The scikit-learn estimator: softmax regression over texts or feature matrices.

  clf = LinjaxClassifier(epochs=10, ngrams=1).fit(texts, labels)
  clf.predict(['some new text'])
  make_pipeline(TfidfVectorizer(), LinjaxClassifier()).fit(texts, labels)

``X`` is one of two kinds, decided by `fit`:

* texts, a 1-D sequence of ``str`` (list, tuple, numpy or pandas): featurised
  by a `linjax.text.Featurizer` built from the featuriser parameters and
  fitted on the training texts;
* a numeric feature matrix [N, F] (numpy array, scipy.sparse matrix or
  array, or anything `sklearn.utils.check_array` takes), with no
  featuriser: the estimator then also works after a `TfidfVectorizer` or
  `HashingVectorizer` in a `Pipeline`. Its units need no care
  (`linjax.estimator_scaling`): a dense matrix is standardised inside the
  estimator (``standardize``) and the model folded back onto the raw
  columns, so ``decision_function(X) = X @ coef_.T + intercept_``; a sparse
  one is used as it is; and the learning rate is scaled by a factor of the
  training rows (1 for rows of unit norm that do not overlap, near what
  linjax's featuriser gives), so that one ``learning_rate`` suits both.

Prediction takes the kind ``fit`` saw. Anything else gets scikit-learn's
errors (`validate_data`, `check_classification_targets`, `check_is_fitted`);
`linjax.estimator_inputs` converts and checks X, y and the weights.

Every parameter is an explicit keyword of ``__init__`` (no logic there, so
`get_params`/`set_params`/`clone`/`GridSearchCV` just work) whose default is
the library's, read from the options dataclasses (``l2='auto'``: from the
data, see `linjax.estimator_scaling.default_l2`). `fit` validates them all in
one place by building those options; a bad value raises `ConfigError` naming
the parameter. The mapping (estimator parameter -> option field; it lives
in `linjax.estimator_options`):

  lowercase, tokenizer, ngrams, buckets, min_count, max_vocab, min_df,
  shape_ngrams, weighting, normalize, hash -> FeaturizerOptions (texts only)
  optimizer -> OptimizerOptions.name; learning_rate, schedule, momentum,
  warmup_fraction, decay_rate, weight_decay, clip_norm -> OptimizerOptions
  loss, label_smoothing, batch_size, token_budget, docs_per_step, epochs,
  max_steps, l2, update -> TrainOptions;
  random_state -> TrainOptions.seed;
  tol, n_iter_no_change, min_steps, standardize -> the estimator's own
  `EstimatorOptions`.

Left out: early stopping on a validation split (``fit`` carves none),
checkpoints (no directory), ``train.steps_per_call`` and
``train.max_host_mb`` (speed and memory, not results). ``loss=None`` lets
``y`` decide (softmax, or sigmoid for a multilabel-indicator y).
``class_weight`` is the estimator's own (dicts too), applied through
``sample_weight`` (``train.class_weight`` stays 'none').

How long `fit` trains (`linjax.estimator_convergence`): ``epochs`` passes,
fewer on a large set (``max_steps``), more on a small one (``min_steps``
steps), stopped earlier by SGDClassifier's rule (``tol``,
``n_iter_no_change``). The shared corpora's texts train as before; on
scikit-learn's toy sets it makes 8 (digits) to about 190 passes (iris).

Multi-label: a 2-D 0/1 ``y`` [N, C] (scikit-learn's multilabel-indicator,
dense or sparse, as `OneVsRestClassifier` takes it) trains the sigmoid loss
(``loss=None``; or another multi-label loss of the table), one binary
logistic regression per column on shared features; then ``classes_`` is
``arange(C)``, `predict` gives the [N, C] indicator (score >= 0, y's dtype),
`predict_proba` each label's own probability, `decision_function` and
``coef_`` all C columns. ``class_weight`` and `partial_fit` take
single-label y only. Predictions: `linjax.estimator_prediction`.

Weights follow scikit-learn: the loss is ``sum_i s_i loss_i / N + l2 *
sum(W ** 2)`` with ``s_i`` = ``sample_weight[i] * class_weight[y_i]``;
'balanced' is ``n_samples / (n_classes * bincount(y))`` (weighted counts
with ``sample_weight``, as `sklearn.utils.class_weight.compute_class_weight`).
With the same weights, scikit-learn's ``LogisticRegression(C=1 / (2 * l2 *
N))`` minimises the same objective (C = 1 / (l2 * N) for two classes, whose
single coefficient vector is our ``W[:, 1] - W[:, 0]``) on texts, sparse or
already standardised columns; with ``standardize`` the penalty is on the
standardised columns' weights.

Pickling (``pickle``, ``joblib``) stores the compact model, about the size
of `linjax.saved_model.save`'s files, not W's zeros
(`linjax.estimator_state`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

try:
  from sklearn.base import BaseEstimator
  from sklearn.base import ClassifierMixin
  from sklearn.utils.validation import column_or_1d
except ImportError as e:  # pragma: no cover
  raise ImportError('linjax.estimator needs scikit-learn >= 1.6: pip install '
                    'scikit-learn') from e

from linjax import estimator_scaling as scaling
from linjax.core.losses import get_loss
from linjax.engine import training as engine
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.estimator_convergence import planned_passes
from linjax.estimator_convergence import ToleranceStop
from linjax.estimator_inputs import features_of
from linjax.estimator_inputs import fit_features
from linjax.estimator_inputs import is_multilabel_indicator
from linjax.estimator_inputs import multilabel_targets
from linjax.estimator_inputs import sample_weights
from linjax.estimator_inputs import targets
from linjax.estimator_options import checked_step
from linjax.estimator_options import EstimatorOptions
from linjax.estimator_options import estimator_options
from linjax.estimator_options import with_loss
from linjax.estimator_prediction import LinearPredictions
from linjax.estimator_state import compact_state
from linjax.estimator_state import full_state
from linjax.text.csr import CsrFeatures
from linjax.text.featurizer_options import FeaturizerOptions

_F, _O, _T = FeaturizerOptions(), OptimizerOptions(), TrainOptions()
_E = EstimatorOptions()


class LinjaxClassifier(ClassifierMixin, LinearPredictions, BaseEstimator):
  """Linear classification (softmax by default) of texts or feature matrices.

  Args:
    lowercase, tokenizer, ngrams, buckets, min_count, max_vocab, min_df,
      shape_ngrams, weighting, normalize, hash: the featuriser of texts
      (`linjax.text.FeaturizerOptions`; unused for a feature matrix).
    loss: a name of the table of losses (`linjax.core.losses.loss_names()`:
      softmax, sigmoid, hinge, ...), a ``'MODULE:NAME'`` or a function, as
      `TrainOptions.loss` takes; None: softmax, or sigmoid for a
      multilabel-indicator y. A multi-label loss needs such a y, any other
      a 1-D y. hinge is Crammer-Singer's multiclass hinge (one margin over
      all classes), not SGDClassifier's one-vs-rest hinge; a margin loss
      has no predict_proba (see `linjax.estimator_prediction`).
    label_smoothing: softmax against ``(1 - a) onehot(y) + a / C``
      (`TrainOptions.label_smoothing`; only the losses that take it).
    optimizer: a name of the optimiser table (sgd, adagrad, adam, lion,
      adabelief) or ``'MODULE:NAME'`` of an optax transformation.
    learning_rate, schedule, momentum, warmup_fraction, decay_rate,
      weight_decay, clip_norm: the optimiser (`OptimizerOptions`).
    batch_size: documents per step, at most.
    token_budget: feature slots per step (the static step shape).
    docs_per_step: raise the step's slots so that a step of long documents
      holds about this many (`TrainOptions.docs_per_step`; 0: off).
    epochs: passes `fit` plans (`partial_fit` makes one), fewer by
      ``max_steps``, more by ``min_steps`` (see the module docstring).
    max_steps: fewer passes than ``epochs`` where they would take more
      steps than this (`TrainOptions.max_steps`; 0: off).
    min_steps: more passes than ``epochs`` where they would take fewer
      steps than this (0: off).
    tol, n_iter_no_change: `fit` stops once the training loss has failed
      ``n_iter_no_change`` passes in a row to fall below the best so far
      minus ``tol`` (SGDClassifier's rule; tol=None: never early).
    standardize: standardise the columns of a dense feature matrix (the
      model is folded back onto the raw columns).
    l2: the penalty ``l2 * sum(W ** 2)`` on the mean loss (bias
      unpenalised). 'auto': ``1 / (2 N)`` on standardised columns (N rows:
      LogisticRegression's default C=1), else 0 (texts, sparse matrices,
      and `partial_fit`).
    update: auto | sparse | dense row updates.
    random_state: int seed of the document order (None or a RandomState:
      a seed drawn from it, as scikit-learn does).
    class_weight: None, 'balanced' or {label: weight}; multiplies
      ``sample_weight`` (see the module docstring).

  Attributes (after `fit` or `partial_fit`):
    classes_: [C] the sorted labels (multi-label y: ``arange(C)``).
    loss_: the table name of the loss `fit` trained.
    multilabel_: whether it is multi-label (y a multilabel-indicator).
    probability_: its probability map (softmax, sigmoid, modified_huber),
      or None for a margin loss.
    params_: Params, W float32 [F, C] and b float32 [C].
    coef_, intercept_: scikit-learn's layout: [C, F] and [C], or for two
      classes [1, F] and [1] (class 1 minus class 0).
    featurizer_: the fitted Featurizer, or None for a feature matrix.
    scaling_: a feature matrix's `NumericScaling` (column means and scales,
      step factor), or None for texts.
    n_features_in_ (feature_names_in_): F of a feature matrix (its columns).
    n_iter_: passes run by the last call.
    fit_result_: the engine's FitResult of the last call (history, timings;
      its ``params`` is None: the model is ``params_``).
  """

  def __init__(self, *, lowercase=_F.lowercase, tokenizer=_F.tokenizer,
               ngrams=_F.ngrams, buckets=_F.buckets, min_count=_F.min_count,
               max_vocab=_F.max_vocab, min_df=_F.min_df,
               shape_ngrams=_F.shape_ngrams, weighting=_F.weighting,
               normalize=_F.normalize, hash=_F.hash, loss=None,
               optimizer=_O.name,
               learning_rate=_O.learning_rate, schedule=_O.schedule,
               label_smoothing=_T.label_smoothing,
               momentum=_O.momentum, warmup_fraction=_O.warmup_fraction,
               decay_rate=_O.decay_rate, weight_decay=_O.weight_decay,
               clip_norm=_O.clip_norm, batch_size=_T.batch_size,
               token_budget=_T.token_budget, docs_per_step=_T.docs_per_step,
               epochs=_T.epochs, max_steps=_T.max_steps,
               min_steps=_E.min_steps, tol=_E.tol,
               n_iter_no_change=_E.n_iter_no_change, l2='auto',
               update=_T.update_path, random_state=_T.seed,
               standardize=_E.standardize, class_weight=None):
    self.lowercase = lowercase
    self.tokenizer = tokenizer
    self.ngrams = ngrams
    self.buckets = buckets
    self.min_count = min_count
    self.max_vocab = max_vocab
    self.min_df = min_df
    self.shape_ngrams = shape_ngrams
    self.weighting = weighting
    self.normalize = normalize
    self.hash = hash
    self.loss = loss
    self.label_smoothing = label_smoothing
    self.optimizer = optimizer
    self.learning_rate = learning_rate
    self.schedule = schedule
    self.momentum = momentum
    self.warmup_fraction = warmup_fraction
    self.decay_rate = decay_rate
    self.weight_decay = weight_decay
    self.clip_norm = clip_norm
    self.batch_size = batch_size
    self.token_budget = token_budget
    self.docs_per_step = docs_per_step
    self.epochs = epochs
    self.max_steps = max_steps
    self.min_steps = min_steps
    self.tol = tol
    self.n_iter_no_change = n_iter_no_change
    self.l2 = l2
    self.update = update
    self.random_state = random_state
    self.standardize = standardize
    self.class_weight = class_weight

  def __sklearn_is_fitted__(self) -> bool:
    return hasattr(self, 'params_')

  def __getstate__(self):
    return compact_state(super().__getstate__())

  def __setstate__(self, state):
    super().__setstate__(full_state(state))

  def __sklearn_tags__(self):
    tags = super().__sklearn_tags__()
    tags.input_tags.sparse = True
    # A multilabel-indicator y trains with loss=None (sigmoid) or a
    # multi-label loss, not with a named one-class-per-document loss.
    try:
      tags.classifier_tags.multi_label = (
          self.loss is None or get_loss(self.loss).multi_label)
    except ValueError:   # LossNotFound: fit names the parameter
      pass
    return tags

  # -- training ------------------------------------------------------------

  def fit(self, X, y, sample_weight=None):
    """Fits the featuriser (texts) and the model, from scratch.

    Args:
      X: N texts, or a numeric feature matrix [N, F] (see module docstring).
      y: [N] labels (any sortable values); an [N, 1] column is ravelled. Or
        a multilabel-indicator [N, C] of 0/1 (the sigmoid loss, see the
        module docstring).
      sample_weight: optional [N] non-negative weights.

    Returns:
      self.
    """
    features, optimizer, training, own = estimator_options(self)
    for attr in ('classes_', 'params_', 'fit_result_', 'n_iter_',
                 'multilabel_', 'scaling_', 'loss_', 'probability_'):
      self.__dict__.pop(attr, None)
    x = fit_features(self, X, features, training, sample_weight,
                     own.standardize)
    Y = multilabel_targets(self, y, x.num_docs)
    training = self._loss_for(training, multilabel=Y is not None)
    if self.multilabel_:
      self.classes_ = np.arange(Y.shape[1])
      weights = sample_weights(self, sample_weight, np.zeros(Y.shape[0], int))
      return self._train(x, Y, weights, optimizer, training, own)
    y = targets(self, y, x.num_docs)
    classes, y_index = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
      raise ValueError(f'{type(self).__name__} needs at least two classes; '
                       f'y holds one class: {classes[0]!r}.')
    self.classes_ = classes
    weights = sample_weights(self, sample_weight, y_index)
    return self._train(x, y_index, weights, optimizer, training, own)

  def partial_fit(self, X, y, classes=None, sample_weight=None):
    """One epoch over a batch, from the current parameters (SGD's contract).

    The first call on an unfitted estimator needs ``classes``, every label
    any batch will hold (after `fit`, calls continue from the fitted model).
    For texts it also fits the featuriser, on that first batch; later calls
    reuse it as it is (a vocabulary, the IDF and min_df come from the first
    batch only). With hashing (``buckets`` > 0), ``weighting`` tf or binary
    and ``min_df=1`` it learns nothing from that batch: every batch is then
    featurised exactly as by a fixed hashing featuriser. A feature matrix's
    standardisation and step likewise come from the first batch. Batches
    of the same sizes reuse the compiled program; the optimiser's state
    (momentum, Adagrad, Adam) and the learning-rate schedule restart with
    each call, so ``schedule='constant'`` keeps the rate steady across
    batches. ``tol`` and ``min_steps`` do not apply (one pass a call).

    Args:
      X: a batch of N texts or a feature matrix [N, F].
      y: [N] labels, all in ``classes``.
      classes: [C] all labels; required on the first call.
      sample_weight: optional [N] non-negative weights.

    Returns:
      self.
    """
    features, optimizer, training, own = estimator_options(self)
    # One pass per call, and the step's shape fixed by token_budget (not by
    # each batch's mean length), so every call reuses one compiled program.
    training = dataclasses.replace(training, epochs=1, max_steps=0,
                                   docs_per_step=0)
    first = not hasattr(self, 'params_')
    if getattr(self, 'multilabel_', False) or is_multilabel_indicator(y):
      raise ValueError(f'{type(self).__name__}.partial_fit takes single-label '
                       'y; for a multi-label y (2-D 0/1) use fit.')
    if first:
      training = self._loss_for(training, multilabel=False)
      if classes is None:
        raise ValueError('classes must be passed on the first call to '
                         'partial_fit.')
      all_classes = np.unique(column_or_1d(classes))
      if all_classes.shape[0] < 2:
        raise ValueError(f'{type(self).__name__} needs at least two classes; '
                         f'classes holds one class: {all_classes[0]!r}.')
      x = fit_features(self, X, features, training, sample_weight,
                       own.standardize)
      self.classes_ = all_classes
      self.multilabel_ = False
    else:
      if classes is not None and not np.array_equal(
          np.unique(column_or_1d(classes)), self.classes_):
        raise ValueError(f'classes={classes!r} is not the same as on the '
                         f'first call to partial_fit ({self.classes_!r}).')
      x = features_of(self, X, training=True)
      training = dataclasses.replace(training, loss=self.loss_)
    y = targets(self, y, x.num_docs)
    unknown = np.setdiff1d(y, self.classes_)
    if unknown.size:
      raise ValueError(f'y holds labels not in classes: {unknown.tolist()} '
                       f'(classes: {self.classes_.tolist()}).')
    y_index = np.searchsorted(self.classes_, y)
    weights = sample_weights(self, sample_weight, y_index, partial=True)
    return self._train(x, y_index, weights, optimizer, training, own,
                       init=None if first else self.params_, plan=False)

  def _loss_for(self, training, multilabel: bool):
    """``training`` with the loss that trains y's kind, recorded on self.

    Raises:
      ValueError: a multi-label loss for a 1-D y, or another for a 2-D one.
    """
    if self.loss is None and multilabel:
      training = with_loss(self, training, 'sigmoid')
    entry = get_loss(training.loss)
    if entry.multi_label != multilabel:
      raise ValueError(
          f'{type(self).__name__}: loss={entry.name!r} '
          + ('is multi-label: y must be a multilabel-indicator [N, C] of 0/1'
             if entry.multi_label else
             'takes one class per document, but y is a multilabel-indicator'
             ' [N, C]: pass loss=None or a multi-label loss such as '
             "'sigmoid'") + '.')
    self.loss_, self.multilabel_ = entry.name, entry.multi_label
    self.probability_ = entry.probability
    return training

  def _train(self, x: CsrFeatures, y_index, weights, optimizer, training,
             own: EstimatorOptions, init=None, plan: bool = True):
    """Trains on ``x`` (in the training units) and keeps the raw model.

    ``init`` (partial_fit's continuation) is on the raw columns; ``plan``:
    `fit`'s passes and stop (False: ``training.epochs``, partial_fit's one).
    """
    numeric = getattr(self, 'scaling_', None)
    if own.auto_l2 and plan:  # partial_fit: the data's size is unknown
      training = dataclasses.replace(
          training, l2=scaling.default_l2(numeric, x.num_docs))
    optimizer = checked_step(self, optimizer, 1.0 if numeric is None
                             else numeric.step, training.l2)
    if numeric is not None and init is not None:
      init = scaling.to_scaled(numeric, init)
    stop = ToleranceStop(own.tol if plan else None, own.n_iter_no_change)
    if plan:
      training = planned_passes(x, training, own.min_steps)
    extra = {} if weights is None else {'sample_weight': weights}
    result = engine.fit(x, np.asarray(y_index, np.int32),
                        int(self.classes_.shape[0]), optimizer=optimizer,
                        training=training, init=init, callback=stop, **extra)
    params = result.params
    if numeric is not None:
      params = scaling.to_raw(numeric, params)
    self.params_ = params
    self.fit_result_ = dataclasses.replace(result, params=None)
    self.n_iter_ = result.epochs_run
    return self
