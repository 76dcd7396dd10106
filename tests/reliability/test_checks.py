"""The single checks the corpus relies on, at their edges: the text-file check, the output probe,
the model-size bound and the mapping of library errors to one-line CLI messages."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from gptbert.io.files import (TEXT_SNIFF_BYTES, NotTextError, OutputPathError, check_new_output, check_text_file,
                              read_text_file)


def test_text_check_accepts_text_and_a_character_cut_by_the_sniff_window(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    # "é" is two bytes; put one across the end of the window that check_text_file reads
    p.write_bytes(b"x" * (TEXT_SNIFF_BYTES - 1) + "é and more\n".encode())
    assert check_text_file(p) == p
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_text_file(bom) == "hello\n"
    z = tmp_path / "c.txt.gz"
    z.write_bytes(gzip.compress("naïve\n".encode()))
    assert check_text_file(z) == z


@pytest.mark.parametrize("content,where", [(b"ok\nok\n\x00bin", "line 3"), (b"caf\xe9\n", "line 1"),
                                           (b"a\n" * 10 + b"\xff", "line 11")])
def test_text_check_names_the_line_of_the_first_bad_byte(tmp_path: Path, content: bytes, where: str) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes(content)
    with pytest.raises(NotTextError, match=where):
        check_text_file(p)


def test_text_check_finds_a_bad_byte_past_the_window_when_reading(tmp_path: Path) -> None:
    p = tmp_path / "late.txt"
    p.write_bytes(b"a\n" * TEXT_SNIFF_BYTES + b"\x00")
    check_text_file(p)  # the sniff window is clean
    with pytest.raises(NotTextError, match="NUL"):
        read_text_file(p)


def test_text_check_folder_and_missing(tmp_path: Path) -> None:
    with pytest.raises(NotTextError, match="is a folder"):
        check_text_file(tmp_path, option="--data")
    with pytest.raises(NotTextError, match="no such file"):
        check_text_file(tmp_path / "nope.txt")


def test_output_probe_refuses_unwritable_places(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputPathError, match="which is a file"):
        check_new_output(f / "sub" / "out.json")
    if Path("/proc/self").exists():
        with pytest.raises(OutputPathError, match="/proc"):
            check_new_output("/proc/gptbert-nope/out.json")
    assert check_new_output(tmp_path / "new" / "deeper" / "out.json").name == "out.json"
    assert not (tmp_path / "new").exists(), "the probe must not create the folders"
    assert not [p for p in tmp_path.iterdir() if "probe" in p.name], "the probe file was left behind"


def test_model_size_bound_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    import gptbert.models as models
    from gptbert.config import ModelConfig

    monkeypatch.setattr(models, "available_memory_bytes", lambda: 10_000_000)  # 10 MB free
    with pytest.raises(ValueError, match="n_layer=2.*more than the"):
        models.build_model(ModelConfig.from_name("bert-tiny"))  # 17.5 MB of fp32 weights
    monkeypatch.setattr(models, "available_memory_bytes", lambda: 10_000_000_000)
    assert models.build_model(ModelConfig.from_name("bert-tiny")) is not None


def test_only_the_libraries_input_errors_become_one_line_messages() -> None:
    from gptbert.cli.errors import user_error_message
    from gptbert.data.readers import DataError

    assert user_error_message(DataError("f.tsv:3: bad row")) == "f.tsv:3: bad row"
    assert user_error_message(NotTextError("x.bin: not a text file")) == "x.bin: not a text file"
    assert user_error_message(KeyError("a bug")) is None
    assert user_error_message(ValueError("also possibly a bug")) is None
