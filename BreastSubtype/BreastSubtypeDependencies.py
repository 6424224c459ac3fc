"""First-use dependency installer; nothing is installed at import.

torch comes from the PyTorch extension (``PyTorchUtils`` picks the CUDA build for this machine);
an existing torch is never replaced. The rest comes from ``Resources/requirements.txt`` through
``slicer.packaging.pip_ensure`` (Slicer >= 5.12) or ``slicer.util.pip_install``. Slicer's own
SimpleITK and numpy are never reinstalled: they are bound to Slicer's build.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import slicer

try:
    from slicer.i18n import tr as _
except ImportError:

    def _(text: str) -> str:
        return text


# Installed beside the module (CMake copies it into Resources/); the source tree keeps it at the root.
_HERE = Path(__file__).resolve().parent
REQUIREMENTS = next(
    (
        p
        for p in (_HERE / "Resources" / "requirements.txt", _HERE.parent / "Resources" / "requirements.txt")
        if p.is_file()
    ),
    _HERE / "Resources" / "requirements.txt",
)
SLICER_OWNED = {"simpleitk", "numpy", "vtk"}  # provided by Slicer; replacing them breaks Slicer


class DependencyError(RuntimeError):
    """Dependencies could not be installed; the message says what to do."""


def requirements() -> list[str]:
    """Requirement lines from Resources/requirements.txt, without Slicer's own packages."""
    lines = []
    for raw in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and _distribution_name(line) not in SLICER_OWNED:
            lines.append(line)
    return lines


def _distribution_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _import_name(requirement: str) -> str:
    name = _distribution_name(requirement)
    return {"scikit-image": "skimage", "scikit-learn": "sklearn"}.get(name, name.replace("-", "_"))


def missing_packages() -> list[str]:
    """Requirements whose import module is absent (a cheap check that imports nothing)."""
    return [req for req in requirements() if importlib.util.find_spec(_import_name(req)) is None]


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def install_torch() -> None:
    """torch through the PyTorch extension; refuse to replace an existing torch."""
    if torch_installed():
        return  # whatever torch is there stays: PyTorch Utils is where users change it
    try:
        import PyTorchUtils
    except ImportError:
        raise DependencyError(
            _(
                "The PyTorch extension is required: install 'PyTorch' from the Extensions Manager, "
                "restart Slicer, and try again."
            )
        ) from None
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True)
    if torch is None:
        raise DependencyError(
            _(
                "PyTorch was not installed. Use the PyTorch Utils module to install it (an offline "
                "site can install a torch wheel there), then try again."
            )
        )


def install_packages(packages: list[str]) -> None:
    """pip_ensure on Slicer >= 5.12 (it skips what is satisfied), pip_install before that."""
    if not packages:
        return
    try:
        packaging = getattr(slicer, "packaging", None)
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            packaging.pip_ensure(packages)
        else:
            slicer.util.pip_install(packages)
    except Exception as exc:  # pip reports offline/proxy problems as a generic failure
        raise DependencyError(
            _(
                "Installing {packages} failed ({error}). If this computer is offline, install the "
                "wheels from a local folder: slicer.util.pip_install('--no-index --find-links "
                "<folder> <package>') in the Python console."
            ).format(
                packages=", ".join(packages),
                error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
        ) from exc


def ensure_dependencies(confirm) -> bool:
    """Install what is missing after ``confirm(message) -> bool`` agrees; False if the user declined.

    ``confirm`` is the widget's question dialog (``slicer.util.confirmOkCancelDisplay``).
    """
    packages = missing_packages()
    needTorch = not torch_installed()
    if not packages and not needTorch:
        return True
    names = (["torch (PyTorch extension)"] if needTorch else []) + packages
    message = _(
        "BreastSubtype needs these Python packages, which will be downloaded and installed now: {names}. "
        "This can take several minutes. Continue?"
    ).format(names=", ".join(names))
    if not confirm(message):
        return False
    install_torch()
    install_packages(packages)
    return True
