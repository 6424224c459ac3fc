"""The manifest as training reads it (SPEC §7).

The one implementation lives in ``BreastSubtypeLib.manifest`` (cohort prediction reads the same
file); training re-exports it so its modules and the converters have one import path.
"""

from BreastSubtypeLib.manifest import (
    REQUIRED_COLUMNS,
    SPLITS,
    ManifestRow,
    read_manifest,
    write_manifest,
)

__all__ = ["REQUIRED_COLUMNS", "SPLITS", "ManifestRow", "read_manifest", "write_manifest"]
