"""The segment terminology of core, rim, peritumoral and tumour, loaded into Slicer at startup.

The JSON follows Slicer's ``SegmentationCategoryTypeModifier`` context format (dcmqi segment
context schema): category *Morphologically Altered Structure*, type *Neoplasm* (SNOMED CT) and
the three regions as private ``99BRSUB`` type modifiers, with the colours the segments get. With
it loaded, Slicer's terminology selector shows and offers the regions instead of unknown codes.
"""

from __future__ import annotations

from pathlib import Path

from BreastSubtypeModuleLib import paths

FILE = "Terminology/BreastSubtype-SegmentationCategoryTypeModifier.json"


def terminology_file() -> Path:
    return paths.resource(FILE)


def load_into(terminologies_logic) -> str:
    """Load the context into a ``vtkSlicerTerminologiesModuleLogic``; returns the context name."""
    name = terminologies_logic.LoadTerminologyFromFile(str(terminology_file()))
    if not name:
        raise RuntimeError(f"Slicer could not read the terminology file {terminology_file()}.")
    return name


def register() -> None:
    import slicer

    load_into(slicer.modules.terminologies.logic())
