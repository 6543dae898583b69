"""The runners' built-in configs (`default.py`, `multilabel.py`): python files
with ``get_config()``, also usable as ``--config=PATH`` by their path."""
