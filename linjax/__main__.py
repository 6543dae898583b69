"""``python -m linjax SUBCOMMAND ...``: the ``linjax`` command (`linjax.cli.main`)."""

from linjax.cli import main

if __name__ == '__main__':
  main.run()
