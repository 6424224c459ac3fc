"""The spatial multi-task network, its configurations and the model package format.

Only ``config`` is imported here: ``network``, ``blocks`` and ``package`` need torch, which the
CLI must not import before it is needed.
"""
