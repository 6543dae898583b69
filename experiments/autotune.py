"""`python -m experiments.autotune` from the repository: `linjax autotune`
(linjax/cli/autotune.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('autotune')
