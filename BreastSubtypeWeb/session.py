"""One browser session's private files: uploads in, outputs (report.html, maps) out.

Each server process owns one session folder made by ``tempfile.mkdtemp`` (mode 0700, so other users
of the machine cannot list or read it) and removes it on exit. While the server lives it holds an
exclusive lock on the folder; a folder whose lock is free belonged to a server that died without
cleaning up (killed, power loss) and is swept by the next server that starts.

File names coming from the browser are never used as paths: an upload keeps only a sanitised base
name, and downloads are looked up by name inside the current case folder only. An upload is staged
apart and becomes the case only once it has been read successfully, so a refused upload leaves the
current case as it was.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError

from .uploads import upload_suffix

try:  # POSIX: the lock that tells a live session folder from a dead server's
    import fcntl
except ImportError:  # pragma: no cover - Windows keeps folders until the OS cleans its temp dir
    fcntl = None

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 512
DEFAULT_IMAGE_MEMORY_MB = 1024
FOLDER_PREFIX = "breast-subtype-web-"
LOCK_NAME = ".lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """The base name of a browser-supplied file name, reduced to ``[A-Za-z0-9._-]``.

    >>> safe_file_name("../../etc/passwd.nii.gz")
    'passwd.nii.gz'
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base or "upload"


def sweep_dead_sessions(parent: Path) -> list[Path]:
    """Remove this user's session folders under ``parent`` whose server is gone; return them."""
    if fcntl is None:
        return []
    swept = []
    for folder in parent.glob(f"{FOLDER_PREFIX}*"):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            # No lock file yet: a server is still creating this folder.
            with open(folder / LOCK_NAME, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: a live server holds the lock
            continue
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(folder)
    if swept:
        logger.info("Removed %d session folder(s) left by servers that did not stop cleanly.", len(swept))
    return swept


class SessionFolder:
    """A private temporary folder; ``new_case()`` starts an empty sub-folder for the next case."""

    def __init__(
        self,
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
        parent: str | None = None,
        image_memory_mb: float = DEFAULT_IMAGE_MEMORY_MB,
    ) -> None:
        self.max_upload_mb = float(max_upload_mb)
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.image_memory_bytes = int(image_memory_mb * 1024 * 1024)
        parent_dir = Path(parent or tempfile.gettempdir())
        self.swept = sweep_dead_sessions(parent_dir)
        self.root = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent_dir))
        # Locked before it takes its name, so a sweeper never sees an unlocked live folder.
        self._lock = open(self.root / f"{LOCK_NAME}.new", "wb")  # noqa: SIM115 - held until close()
        if fcntl is not None:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(self.root / f"{LOCK_NAME}.new", self.root / LOCK_NAME)
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

    def stage_upload(self, name: str, content: bytes) -> Path:
        """Write an upload apart from the current case; refuse oversize and unknown formats."""
        self.check_upload_size(name, len(content))
        file_name = safe_file_name(name)
        upload_suffix(file_name)
        self.discard_staged()
        staging = self.root / "incoming"
        staging.mkdir(mode=0o700)
        path = staging / file_name
        path.write_bytes(content)
        return path

    def discard_staged(self) -> None:
        shutil.rmtree(self.root / "incoming", ignore_errors=True)

    def adopt_staged(self, staged: Path) -> Path:
        """The staged upload becomes the file of a new case (the previous case's files go)."""
        case_dir = self.new_case()
        path = case_dir / staged.name
        staged.rename(path)
        self.discard_staged()
        return path

    def resolve(self, name: str) -> Path:
        """The path of an existing output of the current case; anything outside it is refused."""
        path = (self.case_dir / name).resolve()
        if not path.is_relative_to(self.case_dir.resolve()) or not path.is_file():
            raise BadInputError(f"No such file in this session: {safe_file_name(name)}")
        return path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._lock.close()
