"""linjax: softmax regression over bag-of-words features, in JAX.

The public API (see DESIGN.md): pure functions of arrays and pytrees.
Shapes: N examples, F features, C classes, L id slots per example.
"""

from linjax.csr import CsrFeatures
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

__version__ = '0.1.0'
