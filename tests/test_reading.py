"""Reading a store document: whole, in as few reads as fstat allows, within its limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpclab.errors import StoreError
from hpclab.store import reading
from hpclab.store.reading import read_regular


@pytest.mark.parametrize("size", [0, 1, 4095, 65_536, 3 * 2**20 + 7])
def test_a_file_is_read_whole(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    data = os.urandom(size)
    path.write_bytes(data)
    assert read_regular(path, 2**24) == data


def test_a_file_whose_size_fstat_does_not_know_is_read_whole() -> None:
    """/proc files say 0 bytes and hold more: read on until the end."""
    proc = Path("/proc/version")
    if not proc.exists():
        pytest.skip("no /proc here")
    assert os.stat(proc).st_size == 0
    data = read_regular(proc, 2**20)
    assert data == proc.read_bytes() and len(data) > 0


def test_a_small_file_takes_one_read_a_short_one_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    sizes: list[int] = []
    real = os.read

    def counting(fd: int, n: int) -> bytes:
        sizes.append(n)
        return real(fd, n)

    monkeypatch.setattr(reading.os, "read", counting)
    assert read_regular(path, 2**20) == b"x" * 1000
    assert sizes == [1001]  # not 1 MiB, and no second read() for the end

    def short(fd: int, n: int) -> bytes:  # a filesystem that returns less than asked
        sizes.append(n)
        return real(fd, min(n, 300))

    sizes.clear()
    monkeypatch.setattr(reading.os, "read", short)
    assert read_regular(path, 2**20) == b"x" * 1000
    assert len(sizes) == 4


def test_a_file_that_grows_past_the_limit_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    real = os.read
    grown = []

    def growing(fd: int, n: int) -> bytes:
        if not grown:  # between fstat and the first read, a writer appends
            grown.append(True)
            with open(path, "ab") as f:
                f.write(b"y" * 100)
        return real(fd, n)

    monkeypatch.setattr(reading.os, "read", growing)
    with pytest.raises(StoreError, match="over the 50-byte limit"):
        read_regular(path, 50)
    grown.clear()
    path.write_bytes(b"x" * 10)
    assert read_regular(path, 500) == b"x" * 10 + b"y" * 100  # grew within it: read whole
