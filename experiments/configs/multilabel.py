"""Multi-label configuration: one sigmoid per label (`train.loss='sigmoid'`).

  python -m experiments.train --config=experiments/configs/multilabel.py \
      --config.data.train=tags.txt --workdir=/tmp/tags

The default configuration with the settings chosen for tags on 6 validation
splits of debian_tags/train.txt (never its test split; BUILD_NOTES.md, issue
14): larger steps (64 documents, 1,024 slots: a document's labels are
learned from more examples per update), 10 epochs at learning rate 32,
every n-gram kept (min_df 1: rare tags live on rare words) in 2^18 buckets.
The decision threshold is tuned on the validation split and saved with the
model.
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.train.loss = 'sigmoid'
  config.train.epochs = 10
  config.train.batch_size = 64
  config.train.token_budget = 1024
  config.optimizer.learning_rate = 32.0
  config.features.buckets = 2**18
  config.features.min_df = 1
  config.data.val_fraction = 0.15
  return config
