"""Thin ``python -m experiments.X`` entry points to the ``linjax`` command
(`linjax.cli`) and the config files (`configs/`), for use from the
repository; installed, the same is ``linjax X`` from any folder."""
