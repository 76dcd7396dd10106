"""The one atomic writer of files and directories, and the one overwrite check.

Every file gptbert writes goes through :func:`atomic_write` (a temporary file beside the
target, flushed and fsynced, then ``os.replace``): a crash or a kill at any point leaves the old
file or the new one, never a mix, and a failed write leaves no temporary file behind. Whole
directories are built under a temporary name and renamed into place (:func:`staging_dir`), so a
failed run never leaves an output that blocks the retry. Nothing the user gave is replaced
unless they said so (``force``): :func:`check_new_output`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Union

TMP_MARK = ".tmp-"
"""Part of every temporary name this module makes (``.NAME.tmp-PID-RANDOM``)."""


class OutputExistsError(FileExistsError):
    """An output path exists and replacing it was not allowed (one line, names the path)."""


class OutputPathError(PermissionError):
    """An output path whose folder cannot be created or written (one line, names the path)."""


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_of(path: Path) -> int | None:
    """The permission bits an existing file has (kept when it is replaced)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *, durable: bool = True) -> Path:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it over ``path``.

    ``durable``: fsync the file and its folder (default); off for scratch files. An existing
    file's permission bits are kept.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    mode = _mode_of(path)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), durable=durable)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> Path:
    """UTF-8 text, newlines written as given (no platform translation)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    return atomic_write(path, write, durable=durable)


def json_default(o: Any) -> Any:
    """JSON for paths, numpy / torch scalars and anything else printable."""
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    item = getattr(o, "item", None)
    if callable(item):
        return item()
    tolist = getattr(o, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(o)


def to_json(data: Any, *, indent: int | None = 2) -> str:
    return json.dumps(data, indent=indent, default=json_default, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, durable: bool = True) -> Path:
    return atomic_write_text(path, to_json(data), durable=durable)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON file holding one object; a ValueError naming the file (and line) otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


ExtraFile = Union[str, bytes, os.PathLike, Mapping[str, Any], list]
"""The content of a file given to :func:`write_files` by value: text, bytes, a path to copy, or a
dict / list written as JSON."""


def content_writer(content: ExtraFile) -> Callable[[Path], None]:
    """A writer for :func:`write_files` that writes ``content`` (see :data:`ExtraFile`)."""
    if isinstance(content, os.PathLike):
        source = Path(content)
        if not source.is_file():
            raise FileNotFoundError(f"extra file {source} does not exist")
        return lambda path: shutil.copyfile(source, path)
    if isinstance(content, bytes):
        return lambda path: path.write_bytes(content)
    if isinstance(content, str):
        return lambda path: path.write_text(content, encoding="utf-8")
    if isinstance(content, (Mapping, list)):
        text = to_json(content)
        return lambda path: path.write_text(text, encoding="utf-8")
    raise TypeError(f"extra file content must be str, bytes, a path, a dict or a list; got {type(content).__name__}")


def remove_stale_temp_files(directory: Path, *patterns: str) -> None:
    """Delete the temporary files that a killed writer left in ``directory`` (and ``patterns`` below it)."""
    for pattern in (f".*{TMP_MARK}*", *patterns):
        for p in directory.glob(pattern):
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()


# --------------------------------------------------------------------------- overwrite checks


def check_new_output(path: str | os.PathLike[str], *, force: bool = False, kind: str = "file",
                     option: str | None = None) -> Path:
    """Refuse to replace what exists at ``path`` unless ``force``; returns the path.

    ``kind`` 'file': an existing file needs ``force``, a folder is always an error. ``kind``
    'dir': an existing non-empty folder needs ``force``, a file is always an error. ``option``
    (e.g. '--out') is named in the message. A path that cannot be written at all raises
    :class:`OutputPathError` (see :func:`check_writable_parent`).
    """
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    if kind == "file":
        if path.is_dir():
            raise OutputExistsError(f"{where}: is a folder, expected a file path")
        if path.exists() and not force:
            raise OutputExistsError(f"{where}: already exists; pass --force to replace it")
    elif kind == "dir":
        if path.exists() and not path.is_dir():
            raise OutputExistsError(f"{where}: exists and is not a folder")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise OutputExistsError(f"{where}: folder is not empty; pass --force to replace it")
    else:
        raise ValueError(f"kind: expected 'file' or 'dir', got {kind!r}")
    check_writable_parent(path, option=option)
    return path


def check_writable_parent(path: str | os.PathLike[str], *, option: str | None = None) -> None:
    """Fail early (before any work) when ``path``'s folder cannot be created or written: a file is
    created and removed in the nearest folder that exists (a real probe: permission bits do not
    tell root, read-only mounts or /proc apart). Raises :class:`OutputPathError`."""
    import tempfile

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    where = f"{option} {path}" if option else str(path)
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{where}: cannot create a folder under {probe}, which is a file")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=f".gptbert-probe{TMP_MARK}")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise OutputPathError(f"{where}: cannot write in {probe} ({e.strerror or e})") from None


# --------------------------------------------------------------------------- directories


def publish_dir(tmp: Path, out: Path, *, force: bool = False) -> Path:
    """Move the finished folder ``tmp`` to ``out`` (same file system), replacing ``out`` only with ``force``."""
    check_new_output(out, force=force, kind="dir")
    old: Path | None = None
    if out.exists():
        old = _tmp_name(out)
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(out.parent)
    return out


@contextlib.contextmanager
def staging_dir(out: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out`` to fill; renamed to ``out`` when the block succeeds.

    On an exception (Ctrl-C included) the temporary folder is removed and ``out`` is left as it
    was, so the retry is not blocked by a half-written output.
    """
    out = check_new_output(out, force=force, kind="dir")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(out)
    tmp.mkdir()
    try:
        yield tmp
        publish_dir(tmp, out, force=force)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_files(directory: str | os.PathLike[str], writers: Mapping[str, Callable[[Path], None]]) -> Path:
    """Write several files (name -> function writing that file) into ``directory`` at once.

    A new directory is filled under a temporary name and renamed into place. In an existing one
    every file is written next to its target under a temporary name and then moved over it;
    other files there are never touched. Writers run in the given order (put the file that marks
    the directory as complete last).
    """
    for name in writers:
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"invalid file name {name!r}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputExistsError(f"{directory}: exists and is not a folder")
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(directory)
        tmp.mkdir()
        try:
            for name, write in writers.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                write(tmp / name)
            os.rename(tmp, directory)
            fsync_dir(directory.parent)
            return directory
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not directory.is_dir():  # a real failure, not a folder that appeared meanwhile
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    staged: list[tuple[Path, Path]] = []
    try:
        for name, write in writers.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp_file = _tmp_name(target)
            staged.append((tmp_file, target))
            write(tmp_file)
        for tmp_file, target in staged:
            os.replace(tmp_file, target)
    finally:
        for tmp_file, _ in staged:
            with contextlib.suppress(OSError):
                tmp_file.unlink()
    return directory


def unique_dir(parent: str | os.PathLike[str], stem: str) -> Path:
    """Create and return a new folder ``parent/stem`` (``stem-2``, ``stem-3``, ... when taken).

    ``os.mkdir`` either creates the folder or fails, so two processes asking for the same stem
    at the same moment get different folders.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        candidate = parent / (stem if k == 1 else f"{stem}-{k}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise OutputExistsError(f"{parent}: no free folder name for {stem!r}")


# --------------------------------------------------------------------------------------------- text files


class NotTextError(ValueError):
    """A file given as text is binary, not UTF-8, a folder or missing (one line, names the file)."""


TEXT_SNIFF_BYTES = 1 << 16
"""How much of a file :func:`check_text_file` reads to tell text from binary data."""


def _first_bad_text_byte(raw: bytes, *, final: bool) -> tuple[int, str] | None:
    """(offset, what) of the first byte that cannot start or continue UTF-8 text, else None."""
    nul = raw.find(b"\x00")
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(raw if nul < 0 else raw[:nul], final=final or nul >= 0)
    except UnicodeDecodeError as e:
        return e.start, f"byte 0x{raw[e.start]:02x} is not UTF-8"
    if nul >= 0:
        return nul, "NUL byte (binary data)"
    return None


def missing_file_message(path: str | os.PathLike[str], *, option: str | None = None) -> str:
    """What is wrong with an input path that is not a readable file: a folder, or nothing there."""
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    return f"{where}: is a folder, expected a file" if path.is_dir() else f"{where}: no such file"


def check_text_file(path: str | os.PathLike[str], *, option: str | None = None) -> Path:
    """The one check of a file that must hold UTF-8 text (corpus, texts, labelled rows, keys).

    Reads up to :data:`TEXT_SNIFF_BYTES` (decompressed for ``.gz``); raises :class:`NotTextError`
    naming the file, the line and what was found for a missing path, a folder, a NUL byte or bytes
    that are not UTF-8. Returns the path.
    """
    import gzip

    path = Path(path).expanduser()
    where = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise NotTextError(f"{where}: is a folder, expected a text file")
    if not path.exists():
        raise NotTextError(f"{where}: no such file")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read(TEXT_SNIFF_BYTES)
        else:
            with open(path, "rb") as f:
                raw = f.read(TEXT_SNIFF_BYTES)
        final = len(raw) < TEXT_SNIFF_BYTES
    except (OSError, EOFError) as e:
        raise NotTextError(f"{where}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    bad = _first_bad_text_byte(raw, final=final)
    if bad is not None:
        offset, what = bad
        line = raw.count(b"\n", 0, offset) + 1
        raise NotTextError(f"{where}: not a text file (line {line}, offset {offset}: {what}); expected UTF-8 text")
    return path


def read_text_file(path: str | os.PathLike[str], *, option: str | None = None) -> str:
    """The whole content of a UTF-8 text file, after :func:`check_text_file` (a leading BOM dropped)."""
    path = check_text_file(path, option=option)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise NotTextError(f"{path}: cannot read ({e.strerror or e})") from None
    bad = _first_bad_text_byte(raw, final=True)
    if bad is not None:
        offset, what = bad
        line = raw.count(b"\n", 0, offset) + 1
        raise NotTextError(f"{path}: not a text file (line {line}, offset {offset}: {what}); expected UTF-8 text")
    text = raw.decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text
