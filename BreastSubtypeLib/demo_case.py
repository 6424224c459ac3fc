"""The demo case: ONE synthetic phantom recipe for ``breast-subtype demo``, the Slicer module's demo
case and the web app's, so all three show the same breast, lesion and prediction.

A 192×192×64 post-contrast phantom at 0.7×0.7×1.5 mm (seed 7) with its tumour mask and true
biomarkers; made locally in about a second, nothing is downloaded. The demonstration model that
reads it was trained on synthetic phantoms like it: not for clinical use.

>>> case = demo_case()
>>> case.image.GetSize(), case.case_id
((192, 192, 64), 'demo')
"""

from __future__ import annotations

DEMO_SEED = 7
DEMO_SIZE_IJK = (192, 192, 64)
DEMO_SPACING_MM = (0.7, 0.7, 1.5)


def demo_case(seed: int = DEMO_SEED):
    """The demo phantom (a ``phantom.PhantomCase``: image, tumour mask, lesion centre, biomarkers)."""
    from BreastSubtypeLib.phantom import generate_phantom  # numpy/scipy work: not at CLI start-up

    return generate_phantom(seed, size_ijk=DEMO_SIZE_IJK, spacing_mm=DEMO_SPACING_MM, case_id="demo")
