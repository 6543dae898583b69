"""linjax: softmax regression over bag-of-words features, in JAX.

Shapes: N examples, F features, C classes, L id slots per example. The
layers (docs/architecture.md), each a folder that imports only from the
ones before it:

  core      pure JAX: Params, logits, losses, sparse features, gradients
  text      host: tokenizers, n-grams, hashing, weighting, CSR, Featurizer
  data      host: readers, labels, splits, the demo corpus
  engine    options, optimisers, packing, the compiled loop, fit, sweep,
            data parallelism, checkpoints, scoring
  analysis  metrics, class templates and explanations, loss landscapes,
            plots
  top       saved models (linjax.saved_model) and the scikit-learn
            estimator (linjax.estimator)

The public API is `__all__`. Names from core, text and data load with the
package; the others (which import optax, matplotlib, scikit-learn's
conventions) load on first use, so that ``import linjax`` stays light.
"""

import importlib

__version__ = '0.1.0'

# Public name -> (module, attribute there).
_PUBLIC = {
    # core: the lecture's model (the contract of docs/design.md)
    'Params': ('linjax.core.model', 'Params'),
    'init_params': ('linjax.core.model', 'init_params'),
    'logits': ('linjax.core.model', 'logits'),
    'SparseFeatures': ('linjax.core.features', 'SparseFeatures'),
    'featurize': ('linjax.core.features', 'featurize'),
    'softmax': ('linjax.core.losses', 'softmax'),
    'log_softmax': ('linjax.core.losses', 'log_softmax'),
    'softmax_loss': ('linjax.core.losses', 'softmax_loss'),
    'sigmoid_loss': ('linjax.core.losses', 'sigmoid_loss'),
    'per_example_loss': ('linjax.core.losses', 'per_example_loss'),
    'l2_penalty': ('linjax.core.losses', 'l2_penalty'),
    'objective': ('linjax.core.losses', 'objective'),
    # the table of losses: a user's own loss (README "Your own loss")
    'Loss': ('linjax.core.losses', 'Loss'),
    'get_loss': ('linjax.core.losses', 'get_loss'),
    'register_loss': ('linjax.core.losses', 'register_loss'),
    'loss_names': ('linjax.core.losses', 'loss_names'),
    'manual_grad': ('linjax.core.gradients', 'manual_grad'),
    'numerical_grad': ('linjax.core.gradients', 'numerical_grad'),
    'check_grad': ('linjax.core.gradients', 'check_grad'),
    'GradCheckReport': ('linjax.core.gradients', 'GradCheckReport'),
    'ConfigError': ('linjax.core.errors', 'ConfigError'),
    # text and data
    'Featurizer': ('linjax.text.featurizer', 'Featurizer'),
    'FeaturizerOptions': ('linjax.text.featurizer_options',
                          'FeaturizerOptions'),
    'tokenize': ('linjax.text.tokenizer', 'tokenize'),
    'CsrFeatures': ('linjax.text.csr', 'CsrFeatures'),
    'read_corpus': ('linjax.data.corpus', 'read_corpus'),
    'LabelMap': ('linjax.data.corpus', 'LabelMap'),
    'DataError': ('linjax.data.readers', 'DataError'),
    # engine
    'OptimizerOptions': ('linjax.engine.options', 'OptimizerOptions'),
    'TrainOptions': ('linjax.engine.options', 'TrainOptions'),
    'fit': ('linjax.engine.training', 'fit'),
    'precompile': ('linjax.engine.training', 'precompile'),
    'FitResult': ('linjax.engine.training', 'FitResult'),
    'TrainingDiverged': ('linjax.engine.training', 'TrainingDiverged'),
    'sweep': ('linjax.engine.hyper_sweep', 'sweep'),
    'SweepResult': ('linjax.engine.hyper_sweep', 'SweepResult'),
    'predict_logits': ('linjax.engine.scoring', 'predict_logits'),
    'predict_proba': ('linjax.engine.scoring', 'predict_proba'),
    # top
    'save_model': ('linjax.saved_model', 'save'),
    'load_model': ('linjax.saved_model', 'load'),
    'ModelFileError': ('linjax.saved_model', 'ModelFileError'),
    'LinjaxClassifier': ('linjax.estimator', 'LinjaxClassifier'),
}
__all__ = sorted(_PUBLIC)
_EAGER = ('linjax.core.', 'linjax.text.', 'linjax.data.')


def __getattr__(name):
  if name in _PUBLIC:
    module, attr = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
  raise AttributeError(f'module linjax has no attribute {name!r}')


def __dir__():
  return sorted(set(globals()) | set(__all__))


for _name, (_module, _attr) in _PUBLIC.items():
  if _module.startswith(_EAGER):
    globals()[_name] = getattr(importlib.import_module(_module), _attr)
del _name, _module, _attr
