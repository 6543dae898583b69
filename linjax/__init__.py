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

from linjax.text.csr import CsrFeatures
from linjax.data.corpus import DataError
from linjax.data.corpus import LabelMap
from linjax.data.corpus import read_corpus
from linjax.core.features import SparseFeatures
from linjax.core.features import featurize
from linjax.core.gradients import GradCheckReport
from linjax.core.gradients import check_grad
from linjax.core.gradients import manual_grad
from linjax.core.gradients import numerical_grad
from linjax.core.losses import l2_penalty
from linjax.core.losses import log_softmax
from linjax.core.losses import objective
from linjax.core.losses import per_example_loss
from linjax.core.losses import softmax
from linjax.core.losses import softmax_loss
from linjax.core.model import Params
from linjax.core.model import init_params
from linjax.core.model import logits
from linjax.text.featurizer import Featurizer
from linjax.text.featurizer import tokenize

__version__ = '0.1.0'


def __getattr__(name):
  # The engine, estimator and saved models import optax and friends: load
  # them on first use so that `import linjax` stays light.
  lazy = {
      'fit': ('linjax.engine.training', 'fit'),
      'predict_logits': ('linjax.engine.training', 'predict_logits'),
      'predict_proba': ('linjax.engine.training', 'predict_proba'),
      'FitResult': ('linjax.engine.training', 'FitResult'),
      'TrainingDiverged': ('linjax.engine.training', 'TrainingDiverged'),
      'ConfigError': ('linjax.engine.optimizers', 'ConfigError'),
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
