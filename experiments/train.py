"""`python -m experiments.train` from the repository: `linjax train`
(linjax/cli/train.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('train')
