"""`python -m experiments.plots` from the repository: `linjax plots`
(linjax/cli/plots.py), the same flags."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('plots')
