"""`python -m experiments.sweep` from the repository: `linjax sweep`
(linjax/cli/sweep.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('sweep')
