"""The featuriser's typed options: what `linjax.text.Featurizer` reads.

A frozen dataclass validated in one place (``__post_init__``, with
`linjax.core.errors.Checker`): a bad value raises `ConfigError` naming the
field as ``features.x``, the key of the runner's config. Its defaults are the
library's defaults (the runner's `experiments/configs/default.py` is built
from them); `Featurizer`'s keyword arguments default to them too.

Use `dataclasses.replace(options, field=value)` for a variant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from linjax.core.errors import Checker
from linjax.core.errors import is_int
from linjax.text.hashing import HASHES
from linjax.text.tokenizer import TOKENIZERS
from linjax.text.weighting import NORMALIZATIONS
from linjax.text.weighting import WEIGHTINGS

MAX_BUCKETS = 2**31  # feature ids are int32.


@dataclasses.dataclass(frozen=True)
class FeaturizerOptions:
  """Text -> features (see linjax/text/featurizer.py for the pipeline).

  Attributes:
    lowercase: lower-case the tokens (word shapes still see the case).
    tokenizer: words_punct | tweet | words | whitespace
      (linjax/text/tokenizer.py).
    ngrams: word n-grams 1..ngrams, >= 1.
    buckets: hashing buckets F, in [0, 2**31); 0: an explicit vocabulary.
    min_count: vocabulary only: keep n-grams seen at least this often, >= 1.
    max_vocab: vocabulary only: keep at most this many n-grams; 0: all.
    min_df: drop features in fewer than this many training documents, >= 1.
    shape_ngrams: word-shape n-grams 1..shape_ngrams (``<Xx>`` for "Flu",
      linjax/text/shapes.py); 0: off.
    weighting: tf | binary | tfidf | sublinear_tfidf.
    normalize: l2 | none, of each document's weights.
    hash: the token hash in hashing mode: poly64 (a polynomial over the
      token's code points with a 64-bit finaliser, vectorised) | fnv1a
      (32-bit FNV-1a of its UTF-8 bytes: the hash of models saved before
      format version 4, which load with it).

  Numpy integers and booleans are stored as Python ones, so that the
  options (and a saved featuriser's settings) are plain JSON.
  """

  lowercase: bool = True
  tokenizer: str = 'words_punct'
  ngrams: int = 2
  buckets: int = 2**20
  min_count: int = 1
  max_vocab: int = 0
  min_df: int = 2
  shape_ngrams: int = 2
  weighting: str = 'sublinear_tfidf'
  normalize: str = 'l2'
  hash: str = HASHES[0]

  def __post_init__(self):
    c = Checker(self, 'features')
    c.boolean('lowercase')
    c.choice('tokenizer', TOKENIZERS)
    c.integer('ngrams', lo=1)
    c.integer('buckets', lo=0)
    if is_int(self.buckets) and self.buckets >= MAX_BUCKETS:
      c.fail('buckets', 'must be < 2**31 (feature ids are int32)',
             self.buckets)
    c.integer('min_count', lo=1)
    c.integer('max_vocab', lo=0)
    c.integer('min_df', lo=1)
    c.integer('shape_ngrams', lo=0)
    c.choice('weighting', WEIGHTINGS)
    c.choice('normalize', NORMALIZATIONS)
    c.choice('hash', HASHES)
    c.done()
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if isinstance(value, np.bool_):
        object.__setattr__(self, field.name, bool(value))
      elif isinstance(value, np.integer):
        object.__setattr__(self, field.name, int(value))

  @property
  def uses_document_frequencies(self) -> bool:
    """Whether the weighting (TF-IDF) or min_df reads the training
    documents' frequencies, so that fitting must count them."""
    return self.weighting.endswith('tfidf') or self.min_df > 1

  def to_dict(self) -> dict[str, Any]:
    """``{field: value}`` in field order (the saved featuriser's settings)."""
    return dataclasses.asdict(self)
