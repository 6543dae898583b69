"""Default configuration of `python -m experiments.train`.

Trains on the demo corpus (FreeBSD fortunes, installed by the `demo` extra)
when `data.train` is empty. Every key can be overridden on the command line,
e.g. `--config.optimizer.learning_rate=0.5`.
"""

import ml_collections


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
  config.data.max_per_class = 0   # cap documents per class (0: no cap); the demo sets its own
  config.data.lenient = False     # skip (count and log) bad lines instead of failing

  config.features = ml_collections.ConfigDict()
  config.features.lowercase = True
  config.features.tokenizer = 'words_punct'  # words_punct | tweet | words | whitespace
  config.features.ngrams = 2      # word n-grams 1..ngrams
  config.features.buckets = 2**20  # hashing buckets; 0: an explicit vocabulary
  config.features.min_count = 1   # vocabulary only
  config.features.max_vocab = 0   # vocabulary only; 0: unlimited
  # Drop features (buckets or n-grams) seen in fewer than min_df training
  # documents: +1.4 validation accuracy points on fortunes, +0.5 on sms_spam.
  config.features.min_df = 2
  # Word-shape n-grams 1..2 from the original case ('<Xx> <Xx>': headline
  # case); 0: off. See linjax/text/shapes.py.
  config.features.shape_ngrams = 2
  config.features.weighting = 'sublinear_tfidf'  # tf | binary | tfidf | sublinear_tfidf
  config.features.normalize = 'l2'  # l2 | none

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'sgd'   # sgd | adagrad | adam
  config.optimizer.learning_rate = 28.0  # the loss is a batch mean: large steps
  config.optimizer.schedule = 'linear'  # constant | linear | exponential | cosine | warmup_cosine
  config.optimizer.momentum = 0.0
  config.optimizer.warmup_fraction = 0.05  # warmup_cosine only
  config.optimizer.decay_rate = 0.1       # exponential: factor over the whole run
  config.optimizer.weight_decay = 0.0     # decoupled weight decay (alternative to train.l2)
  config.optimizer.clip_norm = 0.0        # global gradient-norm clipping; 0: off

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 32    # documents per step (at most)
  config.train.token_budget = 512  # feature slots per step (static shape)
  config.train.epochs = 4
  config.train.l2 = 0.0
  config.train.seed = 0
  config.train.patience = 0       # early stopping patience in epochs; 0: off
  config.train.metric = 'accuracy'  # validation metric for early stopping
  config.train.update = 'auto'    # auto | sparse | dense
  config.train.gradcheck = True   # quick three-way gradient check before training
  config.train.checkpoint_every = 1  # epochs between checkpoints; 0: none
  # Steps per call of the compiled program (K): its shapes do not depend on
  # the number of steps, so it compiles while the host featurises.
  config.train.steps_per_call = 128
  # Folder for JAX's persistent compilation cache (e.g. ~/.cache/linjax):
  # later runs with the same shapes skip XLA compilation. Empty: off.
  config.train.compile_cache = ''

  # Defaults chosen on validation splits carved from the shared corpora's
  # training data (never their test split); see BUILD_NOTES.md.
  return config
