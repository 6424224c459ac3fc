"""One browser session's private files: uploads in, outputs (report.html, maps) out.

Each server process owns one session folder made by ``tempfile.mkdtemp`` (mode 0700, so other users
of the machine cannot list or read it) and removes it on exit. File names coming from the browser
are never used as paths: an upload keeps only a sanitised base name inside a fresh case folder, and
downloads are looked up by name inside the current case folder only.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError

DEFAULT_MAX_UPLOAD_MB = 512
# Formats SimpleITK reads as one file; a DICOM series is not accepted by the browser upload.
UPLOAD_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".gipl", ".gipl.gz")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """The base name of a browser-supplied file name, reduced to ``[A-Za-z0-9._-]``.

    >>> safe_file_name("../../etc/passwd.nii.gz")
    'passwd.nii.gz'
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base or "upload"


class SessionFolder:
    """A private temporary folder; ``new_case()`` starts an empty sub-folder for the next case."""

    def __init__(self, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, parent: str | None = None) -> None:
        self.max_upload_mb = float(max_upload_mb)
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.root = Path(tempfile.mkdtemp(prefix="breast-subtype-web-", dir=parent))
        self._case_index = 0
        self.case_dir = self.new_case()

    def new_case(self) -> Path:
        """Forget the previous case's files and return a fresh, empty case folder."""
        for old in self.root.glob("case-*"):
            shutil.rmtree(old, ignore_errors=True)
        self._case_index += 1
        self.case_dir = self.root / f"case-{self._case_index:03d}"
        self.case_dir.mkdir(mode=0o700)
        return self.case_dir

    def check_upload_size(self, name: str, size_bytes: int) -> None:
        if size_bytes > self.max_upload_bytes:
            raise BadInputError(
                f"The upload is {size_bytes / 2**20:.2f} MB, over the {self.max_upload_mb:g} MB "
                f"limit of this server: {safe_file_name(name)}"
            )

    def save_upload(self, name: str, content: bytes) -> Path:
        """Write an uploaded image into a new case folder; refuse oversize and unknown formats."""
        self.check_upload_size(name, len(content))
        file_name = safe_file_name(name)
        if not file_name.lower().endswith(UPLOAD_SUFFIXES):
            raise BadInputError(
                f"Upload one image file ({', '.join(UPLOAD_SUFFIXES)}); this one is not: {file_name}"
            )
        case_dir = self.new_case()
        path = case_dir / file_name
        path.write_bytes(content)
        return path

    def resolve(self, name: str) -> Path:
        """The path of an existing output of the current case; anything outside it is refused."""
        path = (self.case_dir / name).resolve()
        if not path.is_relative_to(self.case_dir.resolve()) or not path.is_file():
            raise BadInputError(f"No such file in this session: {safe_file_name(name)}")
        return path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
