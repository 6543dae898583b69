"""The text layer (host, numpy only): documents -> `CsrFeatures`.

`Featurizer` with its `FeaturizerOptions`, the tokenizers (`tokenize`,
`TOKENIZERS`), the weightings and the CSR corpus; see
linjax/text/featurizer.py for the pipeline.
"""

from linjax.text.bucket_contents import BucketContent
from linjax.text.csr import CsrFeatures
from linjax.text.featurizer import Featurizer
from linjax.text.featurizer_options import FeaturizerOptions
from linjax.text.tokenizer import TOKENIZERS
from linjax.text.tokenizer import tokenize
from linjax.text.weighting import NORMALIZATIONS
from linjax.text.weighting import WEIGHTINGS

__all__ = ('BucketContent', 'CsrFeatures', 'Featurizer', 'FeaturizerOptions', 'NORMALIZATIONS',
           'TOKENIZERS', 'WEIGHTINGS', 'tokenize')
