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


def test_state_scores_on_the_cpu_match_the_device_program():
  import jax.numpy as jnp
  rng = np.random.default_rng(3)
  x = _corpus(rng, rng.integers(0, 40, 300), 211)
  V = rng.normal(size=(211, 4)).astype(np.float32)
  b = rng.normal(size=4).astype(np.float32)
  assert scoring.on_host(V) and scoring.on_host(jnp.asarray(V))
  for scale in (1.0, 0.37):
    host = scoring.logits_scaled(jnp.asarray(V), jnp.float32(scale),
                                 jnp.asarray(b), x, 64)
    # The compiled device program, called directly.
    device = np.zeros_like(host)
    for start, ids, weights in scoring._chunks(x, 64):  # pylint: disable=protected-access
      z = np.asarray(scoring._chunk_logits(  # pylint: disable=protected-access
          jnp.asarray(V), jnp.float32(scale), jnp.asarray(b), ids, weights))
      device[start:start + 64] = z[:min(64, x.num_docs - start)]
    np.testing.assert_allclose(host, device, rtol=1e-5, atol=1e-5)
  # scale 1: exactly the scores of the Params (W = V).
  np.testing.assert_array_equal(
      scoring.logits_scaled(jnp.asarray(V), 1.0, b, x, 64),
      scoring.predict_logits(model.Params(V, b), x))


def test_numpy_losses_match_the_jax_losses_and_stay_finite():
  import jax.numpy as jnp
  from linjax.core import losses
  rng = np.random.default_rng(4)
  z = (rng.normal(size=(50, 6)) * 5).astype(np.float32)
  y = rng.integers(0, 6, 50)
  np.testing.assert_allclose(
      scoring.softmax_nll(z, y),
      np.asarray(losses.nll_from_logits(jnp.asarray(z), jnp.asarray(y))),
      rtol=1e-5, atol=1e-6)
  Y = rng.integers(0, 2, (50, 6)).astype(np.uint8)
  np.testing.assert_allclose(
      scoring.sigmoid_nll(z, Y),
      np.asarray(losses.sigmoid_nll_from_logits(jnp.asarray(z),
                                                jnp.asarray(Y))),
      rtol=1e-5, atol=1e-5)
  big = np.array([[1e4, -1e4, 0.0]], np.float32)
  assert scoring.softmax_nll(big, np.array([0]))[0] == 0.0
  assert scoring.softmax_nll(big, np.array([1]))[0] == np.float32(2e4)
  assert np.isnan(scoring.softmax_nll(big, np.array([3]))[0])  # bad label
  assert scoring.sigmoid_nll(big, np.array([[1, 0, 1]]))[0] == pytest.approx(
      np.log(2.0))
  m = scoring.loss_and_accuracy(z, y)
  assert m['accuracy'] == pytest.approx(np.mean(z.argmax(1) == y))
  assert m['loss'] == pytest.approx(float(np.mean(scoring.softmax_nll(z, y))))
  p = scoring.predict_proba(model.Params(np.eye(3, dtype=np.float32),
                                         np.zeros(3, np.float32)),
                            _corpus(rng, np.array([2, 0]), 3))
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6)   # an empty document


def test_a_corpus_on_disk_scores_as_in_memory(tmp_path, monkeypatch):
  """The out-of-core runner validates on a CsrStore: scored chunk by chunk,
  the same numbers as the CsrFeatures it holds (chunks cut mid-corpus)."""
  from linjax.text import csr_store  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  x = _corpus(rng, rng.integers(0, 20, 120), 53)
  store = csr_store.CsrStore(53, parent=str(tmp_path))
  for lo in range(0, 120, 25):
    store.append(x.take(np.arange(lo, min(lo + 25, 120))))
  original_chunks = csr_store.CsrStore.chunks
  monkeypatch.setattr(csr_store.CsrStore, 'chunks',
                      lambda self: original_chunks(self, max_entries=100))
  W = rng.normal(size=(53, 4)).astype(np.float32)
  b = rng.normal(size=4).astype(np.float32)
  try:
    np.testing.assert_array_equal(
        scoring.logits_scaled(W, np.float32(0.5), b, store, 16),
        scoring.logits_scaled(W, np.float32(0.5), b, x, 16))
  finally:
    store.close()
