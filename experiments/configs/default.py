"""The default config of ``python -m experiments.train`` and ``linjax train``
(built in: linjax/cli/configs/default.py). Copy this file to start your own:
``--config=my_config.py``, then ``--config.x.y=value`` overrides."""

from linjax.cli.configs.default import get_config  # pylint: disable=unused-import
