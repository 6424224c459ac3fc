"""BreastSubtype: ER, PR, HER2 and Ki-67 from one post-contrast breast DCE-MRI volume.

Pure Python (no Slicer, no Qt). Heavy dependencies (torch, monai) are imported lazily by the
modules that need them, so ``import BreastSubtypeLib`` stays fast for the CLI and Slicer.
Research use only: the bundled model is a demonstration model trained on synthetic phantoms.
"""

__version__ = "0.1.0"
