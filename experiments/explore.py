"""`python -m experiments.explore` from the repository: `linjax explore`
(linjax/cli/explore.py), the same flags."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('explore')
