"""Host scoring in blocks of entries (linjax/engine/scoring.py): the same
numbers whatever the blocks, and those of a dense x W + b."""

import numpy as np
import pytest

from linjax.core import model
from linjax.engine import scoring
from linjax.text.csr import CsrFeatures


def _corpus(rng, lengths, num_features):
  indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  ids = rng.integers(0, num_features, indptr[-1]).astype(np.int32)
  weights = rng.normal(size=indptr[-1]).astype(np.float32)
  return CsrFeatures(indptr, ids, weights, num_features)


@pytest.mark.parametrize('block', [1, 7, 64, 1 << 16])
def test_blocks_give_the_same_scores(monkeypatch, block):
  rng = np.random.default_rng(0)
  lengths = rng.integers(0, 30, 200)
  lengths[[0, 5, 6, 199]] = 0          # empty documents, first and last too
  lengths[10] = 150                    # longer than most blocks
  x = _corpus(rng, lengths, 97)
  params = model.Params(rng.normal(size=(97, 5)).astype(np.float32),
                        rng.normal(size=5).astype(np.float32))
  whole = scoring.predict_logits(params, x, batch_size=10_000)
  monkeypatch.setattr(scoring, 'HOST_BLOCK_ENTRIES', block)
  for batch_size in (1, 3, 4096):
    np.testing.assert_array_equal(
        scoring.predict_logits(params, x, batch_size=batch_size), whole)
  dense = np.zeros((x.num_docs, 97), np.float64)
  for i in range(x.num_docs):
    sl = slice(x.indptr[i], x.indptr[i + 1])
    np.add.at(dense[i], x.ids[sl], x.weights[sl])
  np.testing.assert_allclose(whole, dense @ params.W + params.b,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(whole[[0, 5, 6, 199]],
                                np.broadcast_to(params.b, (4, 5)))
