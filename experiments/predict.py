"""`python -m experiments.predict` from the repository: `linjax predict`
(linjax/cli/predict.py), the same flags and config overrides."""

from linjax.cli import main

if __name__ == '__main__':
  main.run_command('predict')
