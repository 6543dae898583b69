"""`python -m experiments.convert` from the repository: `linjax convert`
(linjax/cli/convert.py), the same flags."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('convert')
