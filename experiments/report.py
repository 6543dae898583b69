"""`python -m experiments.report` from the repository: `linjax report`
(linjax/cli/report.py), the same flags."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('report')
