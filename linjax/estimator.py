"""A scikit-learn style classifier over raw texts.

  clf = LinjaxClassifier(epochs=10, learning_rate=1.0, ngrams=2)
  clf.fit(texts, labels).predict(['some new text'])

Keyword arguments override keys of `experiments/configs/default.py`, either
by unique short name (``learning_rate=0.5``, ``epochs=3``, ``ngrams=1``) or as
``section__key`` (``optimizer__learning_rate=0.5``); ``config=`` takes a whole
ConfigDict to start from. `get_params` returns exactly the arguments given, so
`sklearn.base.clone`, `GridSearchCV` and `cross_val_score` work. The class
derives from sklearn's `ClassifierMixin` and `BaseEstimator` when
scikit-learn is installed and stands alone otherwise. Validation and test
splits are not carved here: ``fit`` trains on everything it is given.
"""

from __future__ import annotations

import copy

import numpy as np

try:  # scikit-learn is optional.
  from sklearn.base import BaseEstimator as _Base  # pylint: disable=g-import-not-at-top
  from sklearn.base import ClassifierMixin as _Mixin  # pylint: disable=g-import-not-at-top
  _BASES = (_Mixin, _Base)
except ImportError:  # pragma: no cover
  _BASES = (object,)


def default_config():
  """The default experiment config (experiments/configs/default.py)."""
  from experiments.configs import default  # pylint: disable=g-import-not-at-top
  return default.get_config()


def resolve_overrides(config, overrides: dict):
  """A copy of ``config`` with ``overrides`` applied (see module docstring).

  Raises:
    ValueError: for an unknown or ambiguous key.
  """
  config = copy.deepcopy(config)
  for name, value in overrides.items():
    if '__' in name:
      section, key = name.split('__', 1)
      if section not in config or key not in config[section]:
        raise ValueError(f'LinjaxClassifier: unknown parameter {name!r} (no '
                         f'config key {section}.{key}).')
    else:
      sections = [s for s in config.keys()
                  if hasattr(config[s], 'keys') and name in config[s]]
      if not sections:
        raise ValueError(f'LinjaxClassifier: unknown parameter {name!r}.')
      if len(sections) > 1:
        raise ValueError(f'LinjaxClassifier: {name!r} is ambiguous; use one '
                         f'of {", ".join(s + "__" + name for s in sections)}.')
      section, key = sections[0], name
    if isinstance(value, np.generic):
      value = value.item()
    old = config[section][key]
    if isinstance(old, float) and isinstance(value, int) and not isinstance(
        value, bool):
      value = float(value)
    config[section][key] = value
  return config


class LinjaxClassifier(*_BASES):
  """Softmax regression on bag-of-words features of raw texts.

  Attributes (after `fit`):
    classes_: [C] the sorted distinct labels seen in ``fit``.
    params_: Params with W [F, C], b [C] (numpy float32).
    featurizer_: the fitted Featurizer.
    config_: the ConfigDict actually used.
    fit_result_: the engine's FitResult (history, timings).
  """

  def __init__(self, config=None, **overrides):
    self.config = config
    self._overrides = {}
    self.set_params(**overrides)

  # -- parameters (sklearn protocol) ---------------------------------------

  def get_params(self, deep: bool = True) -> dict:
    """The constructor arguments: ``config`` and every override given."""
    del deep
    params = {'config': self.config}
    params.update({k: getattr(self, k) for k in self._overrides})
    return params

  def set_params(self, **params):
    """Sets constructor arguments (validated at the next `fit`)."""
    for name, value in params.items():
      if name != 'config':
        if name.startswith('_') or (hasattr(type(self), name) and
                                    name not in self._overrides):
          raise ValueError(f'LinjaxClassifier: {name!r} is not a config '
                           f'key.')
        self._overrides[name] = value
      setattr(self, name, value)
    return self

  def _config(self):
    from experiments import config_check  # pylint: disable=g-import-not-at-top
    base = default_config() if self.config is None else self.config
    config = resolve_overrides(base, {k: getattr(self, k)
                                      for k in self._overrides})
    config_check.validate(config, prefix='')
    return config

  # -- training and prediction ---------------------------------------------

  def fit(self, X, y):
    """Fits the featurizer and the model on N texts and their N labels.

    Args:
      X: N raw documents (strings).
      y: N labels (any sortable values: strings, ints).

    Returns:
      self.
    """
    from linjax.text import featurizer as text  # pylint: disable=g-import-not-at-top
    from linjax.engine import training as train  # pylint: disable=g-import-not-at-top
    texts = _texts(X)
    y = np.asarray(y)
    if y.shape != (len(texts),):
      raise ValueError(f'fit: {len(texts)} texts but y has shape {y.shape}.')
    config = self._config()
    self.classes_, y_index = np.unique(y, return_inverse=True)
    if self.classes_.shape[0] < 2:
      raise ValueError('fit: y holds one class; a classifier needs two.')
    self.featurizer_ = text.Featurizer.from_config(config.features)
    x = self.featurizer_.fit_transform(texts)
    self.fit_result_ = train.fit(x, y_index.astype(np.int32),
                                 int(self.classes_.shape[0]), config)
    self.params_ = self.fit_result_.params
    self.config_ = config
    return self

  def _check_fitted(self):
    if not hasattr(self, 'params_'):
      try:
        from sklearn.exceptions import NotFittedError  # pylint: disable=g-import-not-at-top
      except ImportError:  # pragma: no cover
        NotFittedError = AttributeError  # pylint: disable=invalid-name
      raise NotFittedError('LinjaxClassifier is not fitted yet; call fit.')

  def decision_function(self, X) -> np.ndarray:
    """float32 [N, C] class scores ``x W + b`` of N texts."""
    from linjax.engine import training as train  # pylint: disable=g-import-not-at-top
    self._check_fitted()
    return np.asarray(train.predict_logits(
        self.params_, self.featurizer_.transform(_texts(X))))

  def predict_proba(self, X) -> np.ndarray:
    """float32 [N, C] probabilities, columns in the order of ``classes_``."""
    from linjax.engine import training as train  # pylint: disable=g-import-not-at-top
    self._check_fitted()
    return np.asarray(train.predict_proba(
        self.params_, self.featurizer_.transform(_texts(X))))

  def predict(self, X) -> np.ndarray:
    """[N] the most probable label of each text (values of ``classes_``)."""
    return self.classes_[np.argmax(self.decision_function(X), axis=1)]

  def score(self, X, y, sample_weight=None) -> float:
    """Mean accuracy of `predict` on N texts against N labels."""
    pred = self.predict(X)
    correct = (pred == np.asarray(y)).astype(np.float64)
    return float(np.average(correct, weights=sample_weight))


def _texts(X) -> list:
  if isinstance(X, str):
    raise ValueError('expected a sequence of texts, got a single string.')
  texts = [str(t) for t in (X.tolist() if isinstance(X, np.ndarray) else X)]
  return texts
