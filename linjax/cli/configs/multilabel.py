"""Multi-label configuration: one sigmoid per label (`train.loss='sigmoid'`).

  python -m experiments.train --config=linjax/cli/configs/multilabel.py \
      --config.data.train=tags.txt --workdir=/tmp/tags

The default configuration with the settings chosen for tags on 12
validation splits of debian_tags/train.txt (never its test split;
BUILD_NOTES.md, issue 14): small steps (16 documents, 256 slots: ~11
one-line descriptions a step, so each epoch makes ~4x the updates of 64
documents / 1,024 slots and 6 epochs at learning rate 12 reach the P@1 of
10 epochs of the larger steps at half the training time), every n-gram
kept (min_df 1: rare tags live on rare words) in 2^18 buckets. The decision
threshold is tuned on the validation split and saved with the model.
"""

from linjax.cli.configs import default


def get_config():
  config = default.get_config()
  config.train.loss = 'sigmoid'
  config.train.epochs = 6
  config.train.batch_size = 16
  config.train.token_budget = 256
  config.optimizer.learning_rate = 12.0
  config.features.buckets = 2**18
  config.features.min_df = 1
  config.data.val_fraction = 0.15
  return config
