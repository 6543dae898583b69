"""linjax's measuring tools: benchmarks against peers, speed probes.

Not part of the library and not installed: run them from the repository root
as ``python -m benchmarks.NAME --flag=...`` (benchmarks/README.md lists them).
"""

import logging

# JAX logs at INFO that it looked for a TPU and found none; on every run of
# every tool that line is noise, so only its warnings and errors are shown.
logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
