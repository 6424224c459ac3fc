"""BreastSubtype in the browser: a trame-slicer app over Slicer's own core.

Started by ``breast-subtype web``. Every step (phantom, one-click tumour, ROIs, prediction, report)
is the one in ``BreastSubtypeLib``; MRML nodes come from ``BreastSubtypeMRML``. This package only
wires them to views, widgets and a private per-session folder.
"""
