"""The ``breast-subtype`` command line: one module per sub-command, all sharing ``main``."""
