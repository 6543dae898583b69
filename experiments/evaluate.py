"""`python -m experiments.evaluate` from the repository: `linjax evaluate`
(linjax/cli/evaluate.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('evaluate')
