"""First-use dependency installer that cannot break Slicer.

Nothing is installed at import. Before an action that needs more packages the module asks ONCE,
listing exactly what will be installed, then:

- torch comes only from the PyTorch extension (``PyTorchUtilsLogic.installTorch``, which picks the
  CUDA build for this machine) with a minimum version; an installed torch is never replaced;
- everything else is pip-installed under a constraints file that pins every distribution already
  in Slicer's Python (torch, numpy, SimpleITK, scipy, ...), written at run time from
  ``importlib.metadata``, so pip can add packages but never upgrade or downgrade one of Slicer's;
- a requirement that an installed distribution cannot meet is refused with a clear message before
  pip runs, and a transitive conflict makes pip stop (with the constraints) instead of replacing.

``slicer.packaging.pip_ensure`` (Slicer >= 5.12) does the install, ``slicer.util.pip_install``
before that (5.10: its list argument goes to ``pip install`` as is, so ``-c FILE`` passes through).
The planning half is pure Python and tested outside Slicer.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

try:
    from slicer.i18n import tr as _
except ImportError:  # outside Slicer (tests)

    def _(text: str) -> str:
        return text


REQUIREMENTS_FILE = "requirements.txt"
# The Lib's own lower bound (pyproject.toml); a test keeps the two equal.
TORCH_REQUIREMENT = Requirement("torch>=2.2")
# The one-click tumour and Generate ROIs run in Slicer's process and need only these (no torch).
REGION_PACKAGES = ("scipy", "scikit-image")
ACTIONS = ("regions", "prediction")
REQUESTER = "BreastSubtype"


class DependencyError(RuntimeError):
    """Dependencies cannot be installed without harming Slicer, or pip failed; the message says what to do."""


def load_requirements(path: str | Path) -> list[Requirement]:
    """Requirements of a pip requirements file (comments and blank lines skipped)."""
    requirements = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise DependencyError(f"{path}, line {number}: {line!r} is not a requirement ({exc}).") from None
    return requirements


def installed_versions() -> dict[str, str]:
    """``{canonical distribution name: version}`` of everything in this Python (no imports)."""
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(canonicalize_name(name), dist.version)
    return versions


def constraint_lines(installed: Mapping[str, str]) -> list[str]:
    """``name==version`` for every installed distribution whose version pip can read."""
    lines = []
    for name, version in sorted(installed.items()):
        try:
            Version(version)
        except InvalidVersion:  # a local build pip could not pin anyway
            continue
        lines.append(f"{name}=={version}")
    return lines


def write_constraints(folder: str | Path, installed: Mapping[str, str] | None = None) -> Path:
    path = Path(folder) / "slicer-constraints.txt"
    lines = constraint_lines(installed_versions() if installed is None else installed)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class InstallPlan:
    """What an action needs that is missing: torch (through PyTorch Utils) and pip packages."""

    torch: Requirement | None = None
    packages: list[Requirement] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        return self.torch is not None or bool(self.packages)

    def names(self) -> list[str]:
        torch = [_("{requirement} (through the PyTorch extension)").format(requirement=self.torch)]
        return (torch if self.torch is not None else []) + [str(req) for req in self.packages]

    def confirmation(self) -> str:
        """The one question asked before anything is installed."""
        return _(
            "BreastSubtype needs these Python packages, which will be downloaded and installed into "
            "Slicer now:\n\n{names}\n\nPackages Slicer already has (numpy, SimpleITK, torch, ...) are "
            "kept as they are. This can take several minutes. Continue?"
        ).format(names="\n".join(f"- {name}" for name in self.names()))


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


def _check(requirement: Requirement, installed: Mapping[str, str]) -> str | None:
    """None when installed and satisfied; "missing"; or the conflict message."""
    version = installed.get(canonicalize_name(requirement.name))
    if version is None:
        return "missing"
    if requirement.specifier.contains(version, prereleases=True):
        return None
    return _(
        "BreastSubtype needs {requirement}, but this Slicer has {name} {version}, which must not be "
        "replaced (Slicer and other extensions rely on it). Use a Slicer version whose {name} meets "
        "{requirement}."
    ).format(requirement=requirement, name=requirement.name, version=version)


def plan(
    action: str, requirements: Iterable[Requirement], installed: Mapping[str, str] | None = None
) -> InstallPlan:
    """What ``action`` ("regions" or "prediction") still needs, given the installed distributions."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; expected one of {ACTIONS}.")
    installed = installed_versions() if installed is None else installed
    result = InstallPlan()
    wanted = [
        req
        for req in requirements
        if _applies(req) and (action == "prediction" or canonicalize_name(req.name) in REGION_PACKAGES)
    ]
    for requirement in wanted:
        state = _check(requirement, installed)
        if state == "missing":
            result.packages.append(requirement)
        elif state is not None:
            result.conflicts.append(state)
    if action == "prediction":
        state = _check(TORCH_REQUIREMENT, installed)
        if state == "missing":
            result.torch = TORCH_REQUIREMENT
        elif state is not None:
            result.conflicts.append(
                _(
                    "torch {version} is installed; BreastSubtype needs {requirement}. Update torch in "
                    "the PyTorch Utils module (it installs the build that matches your GPU), restart "
                    "Slicer, and try again."
                ).format(version=installed[canonicalize_name("torch")], requirement=TORCH_REQUIREMENT)
            )
    return result


# --- inside Slicer ----------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def install_torch(requirement: Requirement) -> None:
    """torch through PyTorch Utils, which asks nothing here (the module already asked once)."""
    try:
        import PyTorchUtils
    except ImportError:
        raise DependencyError(
            _(
                "The PyTorch extension is required: install 'PyTorch' from the Extensions Manager, "
                "restart Slicer, and try again."
            )
        ) from None
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
        askConfirmation=False, torchVersionRequirement=str(requirement.specifier)
    )
    if torch is None:
        raise DependencyError(
            _(
                "PyTorch was not installed. Use the PyTorch Utils module to install it (an offline "
                "site can install a torch wheel there), then try again."
            )
        )


def install_packages(packages: list[Requirement], work_dir: str | Path) -> None:
    """pip, with every distribution already in Slicer pinned by a constraints file."""
    import slicer

    constraints = write_constraints(work_dir)
    names = [str(req) for req in packages]
    try:
        try:
            import slicer.packaging as slicer_packaging  # Slicer >= 5.12; not an attribute until imported
        except ImportError:
            slicer_packaging = None
        if slicer_packaging is not None and hasattr(slicer_packaging, "pip_ensure"):
            slicer_packaging.pip_ensure(
                names,
                constraints=constraints,
                prompt_install=False,  # asked once already, with the full list
                requester=REQUESTER,
                skip_in_testing=False,  # the self-test sets up what it needs
            )
        else:
            slicer.util.pip_install(["-c", str(constraints), *names])
    except Exception as exc:  # pip reports conflicts and network problems as one failure
        raise DependencyError(
            _(
                "Installing {packages} failed: {error}. Either pip could not install them without "
                "changing a package Slicer already has (see the log for the conflict), or the package "
                "index is not reachable. Offline: slicer.util.pip_install('--no-index --find-links "
                "<folder> <package>') in the Python console."
            ).format(packages=", ".join(names), error=_first_line(exc))
        ) from exc
    finally:
        importlib.invalidate_caches()


def ensure(action: str, confirm: Callable[[str], bool], requirements_path: str | Path) -> bool:
    """Install what ``action`` needs after ``confirm(question)`` agrees; False when the user declines."""
    requirements = load_requirements(requirements_path)
    needs = plan(action, requirements)
    if needs.conflicts:
        raise DependencyError("\n".join(needs.conflicts))
    if not needs.needed:
        return True
    if not confirm(needs.confirmation()):
        return False
    if needs.torch is not None:
        install_torch(needs.torch)
    if needs.packages:
        with tempfile.TemporaryDirectory(prefix="BreastSubtype-pip-") as work_dir:
            install_packages(needs.packages, work_dir)  # constraints written after torch: it is pinned too
    left = plan(action, requirements)
    if left.needed or left.conflicts:
        missing = ", ".join(left.names()) or "\n".join(left.conflicts)
        raise DependencyError(_("Still missing after the install: {missing}.").format(missing=missing))
    return True


def requirement_names(requirements: Iterable[Requirement]) -> list[str]:
    return [canonicalize_name(req.name) for req in requirements]
