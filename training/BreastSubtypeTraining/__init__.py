"""Training and evaluation of BreastSubtype models from a manifest of cases (SPEC §7, §8).

The network, preprocessing and model package come from ``BreastSubtypeLib``: training never
re-implements a step that inference uses.
"""
