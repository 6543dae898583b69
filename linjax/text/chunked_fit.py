"""Fitting a hashing `Featurizer` on a corpus seen a chunk at a time.

Shapes: N documents, F features (hash buckets).

A corpus too large for memory is read in chunks of documents, each
featurised once into raw counts (`counting_featurizer`: the featuriser's
counts before min_df and weighting), which the caller may keep on disk
(linjax/text/csr_store.py). `DocumentFrequencies` adds up the training
documents' document frequencies chunk by chunk; `fitted_featurizer` then
gives the `Featurizer` that ``fit`` on all training texts would have given
(same document frequencies, so the same min_df and IDF), except for the
bucket names, which come from a bounded sample of training texts (they
serve explanations only); `weigh` turns a chunk's counts into its final
features, equal to ``featurizer.transform`` of its texts.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from linjax.text import csr
from linjax.text.featurizer import Featurizer
from linjax.text.featurizer_options import FeaturizerOptions
from linjax.text.weighting import apply_weighting


def counting_featurizer(options: FeaturizerOptions) -> Featurizer:
  """A featuriser whose ``transform`` gives the raw counts [N, F] that one
  with ``options`` weighs (hashing mode: it needs no fit)."""
  if options.buckets <= 0:
    raise ValueError('chunked fitting needs hashing (features.buckets > 0): '
                     'a vocabulary is chosen from the whole corpus.')
  return Featurizer.from_options(dataclasses.replace(
      options, weighting='tf', normalize='none', min_df=1))


class DocumentFrequencies:
  """Document frequencies int64 [F] added up over chunks of counts."""

  def __init__(self, num_features: int):
    self.counts = np.zeros(int(num_features), np.int64)
    self.num_docs = 0

  def add(self, counts: csr.CsrFeatures) -> None:
    """Adds the training documents of ``counts`` (ids unique per row)."""
    self.counts += np.bincount(counts.ids, minlength=self.counts.shape[0])
    self.num_docs += counts.num_docs


def fitted_featurizer(options: FeaturizerOptions,
                      df: DocumentFrequencies | None,
                      name_texts) -> Featurizer:
  """The featuriser fitted on the training corpus whose frequencies are
  ``df`` (None when ``options.uses_document_frequencies`` is False); bucket
  names from ``name_texts`` (a sample of the training texts)."""
  featurizer = Featurizer.from_options(options).fit(list(name_texts))
  if options.uses_document_frequencies:
    featurizer.combine_document_frequencies(
        lambda _sample_df, _sample_docs: (df.counts, df.num_docs))
  return featurizer


def weigh(options: FeaturizerOptions, counts: csr.CsrFeatures,
          df: DocumentFrequencies | None) -> csr.CsrFeatures:
  """The final features of raw ``counts``: min_df, weighting, normalisation
  with the training frequencies ``df`` (the featuriser's own rule)."""
  if not options.uses_document_frequencies:
    return apply_weighting(counts, options.weighting, options.normalize,
                           None, 0, options.min_df)
  return apply_weighting(counts, options.weighting, options.normalize,
                         df.counts, df.num_docs, options.min_df)
