"""Inference: device choice, the model runner, prediction with explanations, case outputs and
resumable cohort runs.

Import the submodules (``inference.runner``, ``inference.predict``, ``inference.outputs``,
``inference.cohort``); this package imports nothing heavy so the CLI stays fast.
"""
