"""Atomic writes: a failed write leaves the previous content (or nothing), never half a file."""

import pytest

from BreastSubtypeLib.atomic import atomic_directory, atomic_path, write_text_atomic


def test_write_text_atomic_replaces_content(tmp_path):
    target = tmp_path / "sub" / "prediction.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in target.parent.iterdir()] == ["prediction.json"]


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "rois.nrrd"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rois.nrrd"]


def test_temporary_keeps_the_real_extension_for_format_detection(tmp_path):
    with atomic_path(tmp_path / "attention.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"x")


def test_atomic_directory_appears_complete_or_not_at_all(tmp_path):
    target = tmp_path / "case"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("a")
        raise RuntimeError("killed")
    assert not target.exists()
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("a")
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("b")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]
