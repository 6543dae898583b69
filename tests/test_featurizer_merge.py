"""Featurizers fitted on parts of a corpus, their document frequencies
summed, featurise as one fitted on the whole corpus (multi-process runs)."""

import numpy as np
import pytest

from linjax.text.featurizer import Featurizer

TEXTS = ['Flu shots are here', 'the flu season starts', 'CDC: flu cases rise',
         'Stocks rise as rates fall', 'rates fall again', 'flu and rates',
         'a new vaccine for the flu', 'Rates: what next?']


def _dense(x):
  return np.asarray(x.to_dense())


@pytest.mark.parametrize('options', [
    dict(),   # default: sublinear TF-IDF, min_df=2, word shapes
    dict(weighting='tfidf', min_df=1, normalize='none'),
    dict(tokenizer='whitespace', min_df=3),
])
def test_summed_parts_featurise_as_the_whole(options):
  options = dict(buckets=1 << 12, **options)
  whole = Featurizer(**options)
  want = whole.fit_transform(TEXTS)
  parts = [Featurizer(**options).fit(TEXTS[:3]),
           Featurizer(**options).fit(TEXTS[3:])]
  # What the runner's all-reduce computes: each part's counts, summed.
  seen = []
  for f in parts:
    f.combine_document_frequencies(lambda df, n: seen.append((df, n)) or
                                   (df, n))
  total = (seen[0][0] + seen[1][0], seen[0][1] + seen[1][1])
  assert total[1] == len(TEXTS)
  for f, texts in zip(parts, (TEXTS[:3], TEXTS[3:])):
    f.combine_document_frequencies(lambda df, n: total)
    np.testing.assert_allclose(_dense(f.transform(texts)),
                               _dense(whole.transform(texts)), rtol=1e-6)
  # Without the sum a part weighs differently (the test can fail).
  alone = Featurizer(**options).fit(TEXTS[:3])
  assert not np.allclose(_dense(alone.transform(TEXTS[:3])),
                         _dense(want)[:3])


def test_nothing_to_combine_without_document_frequencies():
  f = Featurizer(buckets=64, weighting='tf', min_df=1).fit(TEXTS)
  f.combine_document_frequencies(lambda df, n: pytest.fail('called'))


def test_vocabulary_mode_is_refused():
  f = Featurizer(buckets=0).fit(TEXTS)
  with pytest.raises(ValueError, match='buckets > 0'):
    f.combine_document_frequencies(lambda df, n: (df, n))
