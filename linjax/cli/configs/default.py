"""Default configuration of `python -m experiments.train`.

Trains on the demo corpus (FreeBSD fortunes, installed by the `demo` extra)
when `data.train` is empty. Every key can be overridden on the command line,
e.g. `--config.optimizer.learning_rate=0.5`.

The sections ``features``, ``optimizer`` and ``train`` are the library's
options (`linjax.text.featurizer_options.FeaturizerOptions`,
`linjax.engine.options.OptimizerOptions` and `TrainOptions`), built from
their defaults: the one source of defaults, documented on each dataclass.
``data`` and ``train.gradcheck``/``compile_cache``/``keep_checkpoints``/
``remove_checkpoints`` are the runner's own. `linjax/cli/config_check.py`
turns a config back into the options.
Defaults were chosen on validation splits carved from the shared corpora's
training data (never their test split); see BUILD_NOTES.md.
"""

import dataclasses

import ml_collections

from linjax.cli import report
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.featurizer_options import FeaturizerOptions


def _section(options) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dataclasses.asdict(options))


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  config.data = ml_collections.ConfigDict()
  config.data.train = ''          # empty: the demo corpus
  config.data.test = ''           # empty: a held-out split of data.train
  config.data.format = ''         # tsv|csv|jsonl|fasttext|folder|fortune; empty: by extension
  config.data.text_column = 'text'    # CSV/JSONL field holding the text
  config.data.label_column = 'label'  # CSV/JSONL field holding the label
  config.data.val_fraction = 0.1  # stratified validation split carved from train
  config.data.test_fraction = 0.2  # held-out test split when data.test is empty
  config.data.refit = True        # then train the saved model on train + validation (val metrics: the first fit's)
  config.data.max_per_class = 0   # cap documents per class (0: no cap); the demo sets its own
  config.data.lenient = False     # skip (count and log) bad lines instead of failing
  config.data.label_separator = ','  # multi-label (train.loss=sigmoid): separates the labels of a TSV/CSV label field
  config.data.allow_unlabeled = False  # multi-label: a line with no label is a document with no tags, not an error

  config.features = _section(FeaturizerOptions())
  config.optimizer = _section(OptimizerOptions())
  config.train = _section(TrainOptions())
  config.train.gradcheck = True   # quick three-way gradient check before training
  # JAX's persistent compilation cache: later runs with the same shapes skip
  # XLA compilation. 'auto': $XDG_CACHE_HOME/linjax/jax or
  # ~/.cache/linjax/jax (LINJAX_COMPILE_CACHE=0 turns it off, or names
  # another folder); a folder path; empty: off.
  config.train.compile_cache = 'auto'
  config.train.keep_checkpoints = 1  # newest checkpoints kept on disk while training
  config.train.remove_checkpoints = True  # delete the checkpoints after a successful run

  config.report = ml_collections.ConfigDict()
  # report.html in the workdir: documents embedded at most (the misclassified
  # first, then a stratified sample); 0: no report.html.
  config.report.max_docs = report.DEFAULT_MAX_DOCS
  return config
