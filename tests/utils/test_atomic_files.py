"""Atomic outputs get the permissions a plain open() would give them."""

import os
import stat

import pytest

from boneage_d2.io.atomic import atomic_open, atomic_write_json


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        with atomic_open(tmp_path / "b.csv", newline="") as f:
            f.write("a,b\n")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    expected = _mode(tmp_path / "plain.txt")
    assert expected == 0o666 & ~umask
    assert _mode(tmp_path / "a.json") == expected
    assert _mode(tmp_path / "b.csv") == expected


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "kept.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    atomic_write_json(path, {"y": 2})
    assert _mode(path) == 0o640 and path.read_text().strip() == '{"y": 2}'
