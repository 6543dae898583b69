"""linjax's experiment runners (absl programs over ml_collections configs)."""

import logging

# JAX logs at INFO that it looked for a TPU and found none; on every run of
# every runner that line is noise, so only its warnings and errors are shown.
logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
