"""What a pickled `LinjaxClassifier` holds: its compact model, not dense W.

A fitted estimator keeps W [F, C] dense in memory for prediction; with
hashed features F is 2^20, so pickling it as it is wrote 16.8 MB for a model
fitted on 6 documents, almost all of it zeros (W, and the featuriser's
document frequencies). `compact_state` stores what `linjax.saved_model.save`
stores instead (`linjax.compact_model`): the non-zero rows of W with their
ids, b, and the featuriser as `Featurizer.to_dict` with its long lists as
arrays; `full_state` rebuilds the estimator's attributes from them, bit for
bit (float32 rows, the featuriser's exact state). ``pickle``, ``joblib``,
``copy.deepcopy`` and `sklearn.base.clone` (which copies parameters only)
all go through `LinjaxClassifier.__getstate__`/``__setstate__``.

Pickle is the user's own choice for an estimator object, as for any
scikit-learn estimator: load only pickles you trust. linjax itself never
loads a pickle; its model files are `linjax.saved_model`'s.
"""

from __future__ import annotations

import numpy as np

from linjax import compact_model
from linjax.core.model import Params
from linjax.saved_model import jsonable
from linjax.text.featurizer import Featurizer

# The key of the compact form in a pickled state (its absence: an estimator
# pickled before compact states, read as it is).
COMPACT = '_compact_model'


def compact_state(state: dict) -> dict:
  """An estimator's ``__dict__`` with ``params_`` and ``featurizer_`` compact.

  Args:
    state: the estimator's attributes (not changed).

  Returns:
    A new dict: without ``params_``/``featurizer_``, with `COMPACT` holding
    the shape of W, its non-zero rows (``W.row_ids``, ``W.rows``), ``b``
    and the featuriser's JSON state with arrays (or None).
  """
  state = dict(state)
  params = state.pop('params_', None)
  featurizer = state.get('featurizer_')
  if params is None:
    return state
  W = np.asarray(params.W, np.float32)
  arrays = compact_model.compress_weights(W, 'float32')
  arrays['b'] = np.asarray(params.b, np.float32)
  compact = dict(shape=W.shape, arrays=arrays, featurizer=None)
  if featurizer is not None:
    state.pop('featurizer_')
    compact['featurizer'] = compact_model.lists_to_arrays(
        jsonable(featurizer.to_dict()), 'featurizer')
  state[COMPACT] = compact
  return state


def full_state(state: dict) -> dict:
  """Inverse of `compact_state`: ``params_`` and ``featurizer_`` rebuilt."""
  state = dict(state)
  compact = state.pop(COMPACT, None)
  if compact is None:
    return state
  arrays = compact['arrays']
  W = compact_model.expand_weights(arrays, compact['shape'], 'float32')
  state['params_'] = Params(W, np.asarray(arrays['b'], np.float32))
  if compact['featurizer'] is not None:
    value, lists = compact['featurizer']
    state['featurizer_'] = Featurizer.from_dict(
        compact_model.arrays_to_lists(value, lists))
  return state
