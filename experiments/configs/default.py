"""The default config of ``python -m experiments.train`` and ``linjax train``
(built in: linjax/cli/configs/default.py). Your own: a file whose
``get_config()`` changes keys of this one (README, "Quickstart"), then
``--config=my_config.py`` and ``--config.x.y=value`` overrides."""

from linjax.cli.configs.default import get_config  # pylint: disable=unused-import
