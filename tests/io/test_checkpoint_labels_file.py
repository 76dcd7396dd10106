"""read_labels reads the labels.json that save_run writes ({"labels": [...]}), not its key."""

from gptbert.io.checkpoint import read_labels


def test_read_labels_of_our_own_run_file(tmp_path):
    (tmp_path / "labels.json").write_text('{"labels": ["neg", "pos"]}')
    assert read_labels(tmp_path) == ["neg", "pos"]
    (tmp_path / "labels.json").write_text('{"0": "neg", "1": "pos"}')
    assert read_labels(tmp_path) == ["neg", "pos"]
    (tmp_path / "labels.json").write_text('["a", "b"]')
    assert read_labels(tmp_path) == ["a", "b"]
