"""The one atomic writer: old-or-new files, no temporary leftovers, no silent overwrite."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from gptbert.io.files import (
    OutputExistsError,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_new_output,
    staging_dir,
    unique_dir,
    write_files,
)


def test_atomic_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one\r\n")
    os.chmod(p, 0o600)
    atomic_write_text(p, "two\n")
    assert p.read_bytes() == b"two\n" and (p.stat().st_mode & 0o777) == 0o600
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("old")

    def boom(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_json_and_folder_targets(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "d.json", {"p": tmp_path, "x": 1.5})
    assert '"x": 1.5' in (tmp_path / "d.json").read_text()
    with pytest.raises(IsADirectoryError):
        atomic_write_text(tmp_path, "x")


def test_check_new_output(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    check_new_output(f)  # does not exist: fine
    f.write_text("mine")
    with pytest.raises(OutputExistsError, match=r"--out .*f.txt: already exists; pass --force"):
        check_new_output(f, option="--out")
    check_new_output(f, force=True)
    with pytest.raises(OutputExistsError, match="is a folder"):
        check_new_output(tmp_path, force=True)
    d = tmp_path / "d"
    d.mkdir()
    check_new_output(d, kind="dir")  # empty folder: fine
    (d / "x").write_text("1")
    with pytest.raises(OutputExistsError, match="not empty"):
        check_new_output(d, kind="dir")
    with pytest.raises(OutputExistsError, match="not a folder"):
        check_new_output(f, kind="dir", force=True)


def test_staging_dir_publishes_on_success_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with staging_dir(out) as tmp:
            (tmp / "model").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # the retry is not blocked
    with staging_dir(out) as tmp:
        (tmp / "model").write_text("done")
    assert (out / "model").read_text() == "done" and [x.name for x in tmp_path.iterdir()] == ["run"]
    with pytest.raises(OutputExistsError):
        with staging_dir(out):
            pass
    with staging_dir(out, force=True) as tmp:
        (tmp / "model").write_text("again")
    assert (out / "model").read_text() == "again" and [x.name for x in tmp_path.iterdir()] == ["run"]


def test_write_files_new_and_existing(tmp_path: Path) -> None:
    d = tmp_path / "ckpt"
    write_files(d, {"a": lambda p: p.write_text("1"), "sub/b": lambda p: p.write_text("2")})
    (d / "keep").write_text("k")
    write_files(d, {"a": lambda p: p.write_text("3")})
    assert (d / "a").read_text() == "3" and (d / "sub" / "b").read_text() == "2" and (d / "keep").exists()
    with pytest.raises(ValueError):
        write_files(d, {"../x": lambda p: p.write_text("no")})


def test_unique_dir_under_concurrency(tmp_path: Path) -> None:
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(unique_dir(tmp_path, "compare-20261203-101500")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)
