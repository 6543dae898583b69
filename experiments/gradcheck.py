"""`python -m experiments.gradcheck` from the repository: `linjax gradcheck`
(linjax/cli/gradcheck.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('gradcheck')
