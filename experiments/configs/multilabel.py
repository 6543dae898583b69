"""The multi-label config (``train.loss=sigmoid``), built in as
linjax/cli/configs/multilabel.py: ``--config=experiments/configs/multilabel.py``
from the repository."""

from linjax.cli.configs.multilabel import get_config  # pylint: disable=unused-import
