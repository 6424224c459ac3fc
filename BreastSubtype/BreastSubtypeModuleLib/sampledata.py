"""The demo phantom in Slicer's Sample Data module, from files shipped with the extension.

The files are the project's own synthetic phantom (``breast-subtype phantom``; remade by
``Resources/SampleData/make_sample_data.py``), so the demo works offline: the URIs are
``file:`` URLs of the installed files, which ``SampleDataLogic.downloadFile`` fetches with
``urllib.request.urlretrieve`` into the cache and verifies against the SHA-256 below
(``slicer.util.computeChecksum``). Registration API: ``SampleData.SampleDataLogic.
registerCustomSampleDataSource`` (Modules/Scripted/SampleData/SampleData.py, Slicer 5.10).
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeModuleLib.paths import MODULE_DIR

CATEGORY = "BreastSubtype"
SAMPLE_NAME = "BreastSubtypePhantom"
THUMBNAIL = "BreastSubtypePhantom.png"


@dataclass(frozen=True)
class SampleFile:
    file_name: str
    node_name: str
    load_file_type: str  # a Slicer IO file type
    sha256: str


FILES = (
    SampleFile(
        "BreastSubtypePhantom.nrrd",
        "BreastSubtype phantom",
        "VolumeFile",
        "5ec5885aa7fa6dad958abe8d16fa8ffe33592500c4f3f645199ccbaae577a973",
    ),
    SampleFile(
        "BreastSubtypePhantom-tumour.seg.nrrd",
        "BreastSubtype phantom tumour",
        "SegmentationFile",
        "31ec3fad1d71e769927081af8465f37c93e47ec105041d18d63bb9885bb720fa",
    ),
)


def sample_folder(module_dir: Path = MODULE_DIR) -> Path:
    return module_dir / "Resources" / "SampleData"


def file_uri(path: str | Path) -> str:
    """A ``file:`` URL that ``urllib.request.urlretrieve`` reads (as ``SampleDataTest.path2uri`` builds)."""
    return urllib.parse.urljoin("file:", urllib.request.pathname2url(str(Path(path).resolve())))


def source_arguments(folder: Path | None = None) -> dict:
    """Keyword arguments of ``registerCustomSampleDataSource`` for the demo phantom."""
    folder = folder or sample_folder()
    return {
        "category": CATEGORY,
        "sampleName": SAMPLE_NAME,
        "thumbnailFileName": str(folder / THUMBNAIL),
        "uris": [file_uri(folder / f.file_name) for f in FILES],
        "fileNames": [f.file_name for f in FILES],
        "nodeNames": [f.node_name for f in FILES],
        "loadFileTypes": [f.load_file_type for f in FILES],
        "checksums": [f"SHA256:{f.sha256}" for f in FILES],
    }


def register() -> None:
    """Add the phantom to the Sample Data module (called once Slicer has started)."""
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(**source_arguments())


def load_demo_case():
    """Load the phantom through Sample Data: ``(volume node, tumour segmentation node)``."""
    import SampleData

    nodes = SampleData.SampleDataLogic().downloadSamples(SAMPLE_NAME)
    volume = next((n for n in nodes if n.IsA("vtkMRMLScalarVolumeNode")), None)
    tumour = next((n for n in nodes if n.IsA("vtkMRMLSegmentationNode")), None)
    if volume is None or tumour is None:
        raise RuntimeError(f"The demo phantom did not load from {sample_folder()}; reinstall the extension.")
    return volume, tumour
