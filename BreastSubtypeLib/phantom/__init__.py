"""Synthetic post-contrast breast DCE-MRI phantoms with tumour masks and biomarker ground truth.

The correlates between biomarkers and imaging, and their formulas, are documented in
``biomarkers.py`` (labels from latent features) and ``lesion.py`` (appearance from latent features).
"""

from BreastSubtypeLib.phantom.biomarkers import LATENT_FEATURES, Biomarkers
from BreastSubtypeLib.phantom.cohort import write_phantom_cohort
from BreastSubtypeLib.phantom.generator import REFERENCE_CASE, PhantomCase, generate_phantom

__all__ = [
    "LATENT_FEATURES",
    "REFERENCE_CASE",
    "Biomarkers",
    "PhantomCase",
    "generate_phantom",
    "write_phantom_cohort",
]
