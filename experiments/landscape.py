"""`python -m experiments.landscape` from the repository: `linjax landscape`
(linjax/cli/landscape.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('landscape')
