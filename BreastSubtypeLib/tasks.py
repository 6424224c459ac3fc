"""What the model estimates, named once: the receptors, Ki-67, their output keys and their titles.

>>> [TASK_TITLES[task] for task in TASKS]
['ER', 'PR', 'HER2', 'Ki-67']
>>> LABELS
('er', 'pr', 'her2', 'ki67_percent')
"""

from __future__ import annotations

# Binary tasks: the probability that the tumour is positive for the receptor.
RECEPTORS: tuple[str, ...] = ("er", "pr", "her2")
# The network's heads (NetworkConfig.tasks); Ki-67 is a regression in percent.
TASKS: tuple[str, ...] = (*RECEPTORS, "ki67")
# Head -> key of its output (and of its label in a manifest, a loss or a predictions table).
TASK_OUTPUT_KEYS: dict[str, str] = {"er": "er", "pr": "pr", "her2": "her2", "ki67": "ki67_percent"}
KI67_KEY = TASK_OUTPUT_KEYS["ki67"]
LABELS: tuple[str, ...] = tuple(TASK_OUTPUT_KEYS[task] for task in TASKS)
TASK_TITLES: dict[str, str] = {"er": "ER", "pr": "PR", "her2": "HER2", "ki67": "Ki-67"}
