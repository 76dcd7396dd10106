"""The command table and the options of every command: one convention, help for everything."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from gptbert.cli import COMMANDS, build_parser, main


def _subcommands(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, f"{path} {name}")


PARSERS = dict(_subcommands(build_parser(), "gptbert"))


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, (argparse._SubParsersAction, argparse._HelpAction, argparse._VersionAction)):
            yield action


def test_the_command_table_is_the_parser():
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(top.choices) == list(COMMANDS)  # every command, in the table's order
    for name, module in COMMANDS.items():
        func = top.choices[name].get_default("func")
        assert func is None or func.__module__ == f"gptbert.cli.{module}", name


@pytest.mark.parametrize("path", sorted(PARSERS))
def test_every_option_has_help(path):
    missing = []
    for action in _options(PARSERS[path]):
        text = re.sub(r"\(default: [^)]*\)", "", action.help or "").strip(" .;")
        if not text or action.help == argparse.SUPPRESS:
            missing.append("/".join(action.option_strings) or action.dest)
    assert not missing, f"{path}: no help text for {', '.join(missing)}"


def test_one_json_convention():
    for path, parser in PARSERS.items():
        for action in _options(parser):
            if "--json" in action.option_strings:  # a switch: JSON on standard output
                assert action.nargs == 0 and action.const is True, path
            if "--json-out" in action.option_strings:  # a path, never replaced without --force
                assert action.nargs is None and action.metavar == "PATH", path
                assert any("--force" in a.option_strings for a in _options(parser)), path
            assert not any(o.startswith("--no-no-") for o in action.option_strings), (path, action.option_strings)


def test_negative_boolean_field_has_a_readable_pair():
    parser = PARSERS["gptbert finetune"]
    base = ["--model", "bert-tiny", "--train", "t.tsv", "--out", "o"]
    assert parser.parse_args(base).no_decay_norm_bias_embed is True
    assert parser.parse_args([*base, "--decay-norm-bias-embed"]).no_decay_norm_bias_embed is False
    assert parser.parse_args([*base, "--no-decay-norm-bias-embed"]).no_decay_norm_bias_embed is True


def test_json_out_refuses_to_replace_a_file(tmp_path, capsys):
    out = tmp_path / "profile.json"
    out.write_text("keep")
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\na\t1\nb\t0\n")
    assert main(["data", "profile", str(data), "--json-out", str(out)]) == 2
    assert "--json-out" in capsys.readouterr().err and out.read_text() == "keep"
    assert main(["data", "profile", str(data), "--json", "--json-out", str(out), "--force"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("{") and f"wrote {out}" in captured.err  # stdout: the JSON alone
    assert '"n_examples": 2' in out.read_text()
