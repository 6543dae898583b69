"""`python -m experiments.explain` from the repository: `linjax explain`
(linjax/cli/explain.py), the same flags."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('explain')
