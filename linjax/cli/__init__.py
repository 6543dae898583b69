"""The ``linjax`` command: absl runners over ``ml_collections`` configs.

The top layer of the package and the only one that sees a config object:
each subcommand (``linjax train``, ``predict``, ``evaluate``, ...; see
`linjax.cli.main`) turns its ConfigDict into the library's typed options at
this boundary (`linjax.cli.config_check`) and calls library functions.
``experiments/`` in the repository keeps thin ``python -m experiments.X``
entry points to the same code.
"""

import logging

# JAX logs at INFO that it looked for a TPU and found none; on every run of
# every runner that line is noise, so only its warnings and errors are shown.
logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
