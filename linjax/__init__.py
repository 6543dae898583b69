"""linjax: softmax regression over bag-of-words features, in JAX.

The public API (see DESIGN.md): pure functions of arrays and pytrees.
Shapes: N examples, F features, C classes, L id slots per example.

Layers, top to bottom: text and data on the host (`linjax.text`,
`linjax.data`, numpy only), features, model and losses, gradients, the
training engine (`linjax.train`, `linjax.optim`, `linjax.sweep`,
`linjax.distributed`), evaluation and insight (`linjax.metrics`,
`linjax.interpret`, `linjax.landscape`, `linjax.plots`), saved models
(`linjax.saved_model`) and a scikit-learn style estimator.
"""

from linjax.csr import CsrFeatures
from linjax.data import DataError
from linjax.data import LabelMap
from linjax.data import read_corpus
from linjax.features import SparseFeatures
from linjax.features import featurize
from linjax.gradients import GradCheckReport
from linjax.gradients import check_grad
from linjax.gradients import manual_grad
from linjax.gradients import numerical_grad
from linjax.losses import l2_penalty
from linjax.losses import log_softmax
from linjax.losses import objective
from linjax.losses import per_example_loss
from linjax.losses import softmax
from linjax.losses import softmax_loss
from linjax.model import Params
from linjax.model import init_params
from linjax.model import logits
from linjax.text import Featurizer
from linjax.text import tokenize

__version__ = '0.1.0'


def __getattr__(name):
  # The engine, estimator and saved models import optax and friends: load
  # them on first use so that `import linjax` stays light.
  lazy = {
      'fit': ('linjax.train', 'fit'),
      'predict_logits': ('linjax.train', 'predict_logits'),
      'predict_proba': ('linjax.train', 'predict_proba'),
      'FitResult': ('linjax.train', 'FitResult'),
      'TrainingDiverged': ('linjax.train', 'TrainingDiverged'),
      'ConfigError': ('linjax.optim', 'ConfigError'),
      'LinjaxClassifier': ('linjax.estimator', 'LinjaxClassifier'),
      'save_model': ('linjax.saved_model', 'save'),
      'load_model': ('linjax.saved_model', 'load'),
      'ModelFileError': ('linjax.saved_model', 'ModelFileError'),
  }
  if name in lazy:
    import importlib
    module, attr = lazy[name]
    return getattr(importlib.import_module(module), attr)
  raise AttributeError(f'module linjax has no attribute {name!r}')
