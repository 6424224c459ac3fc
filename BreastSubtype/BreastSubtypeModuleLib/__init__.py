"""The BreastSubtype Slicer module's code, beside ``BreastSubtype.py`` (SlicerNNUNetLib layout).

Slicer registers every ``.py`` at the top of a module path as a module of its own
(``qSlicerScriptedLoadableModuleFactory::isValidFile`` over a non-recursive scan), so the module
folder holds only ``BreastSubtype.py`` and everything else lives in this package.

Modules without Qt or the Slicer application (testable with the ``slicer-core`` wheel or plain
Python): ``paths``, ``process``, ``dependencies``, ``reloading``, ``gpu``, ``prediction``,
``sampledata``, ``terminology``. The GUI: ``parameters``, ``logic``, ``widget``, ``selftest``.
Nothing here imports torch or the model at import time.
"""
