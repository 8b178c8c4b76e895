"""Checkpoint and rejects file: the pieces that make a resumed ingest exact."""

from __future__ import annotations

import json

from dsr.ingest.checkpoint import Checkpoint, Completion, RejectsFile, completion_path, fingerprint, model_identity
from dsr.ingest.writer import is_retryable


def test_checkpoint_round_trip_and_catalog_match(tmp_path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"id": "a", "title": "A"}\n')
    cp = Checkpoint(str(catalog.resolve()), "idx", fingerprint(catalog), rows_done=1, rejects_bytes=10,
                    counts={"read": 1})
    cp.save(tmp_path / "cp.json")
    loaded = Checkpoint.load(tmp_path / "cp.json")
    assert loaded == cp and loaded.matches(catalog, "idx")
    assert not loaded.matches(catalog, "other")
    catalog.write_text('{"id": "a", "title": "changed"}\n')
    assert not loaded.matches(catalog, "idx")


def test_an_unreadable_checkpoint_means_start_over(tmp_path):
    (tmp_path / "cp.json").write_text("{half")
    assert Checkpoint.load(tmp_path / "cp.json") is None
    assert Checkpoint.load(tmp_path / "missing.json") is None


def test_rejects_file_resumes_by_truncating_to_the_checkpointed_length(tmp_path):
    path = tmp_path / "rejects.jsonl"
    rejects = RejectsFile(path)
    rejects.write(3, "x", "missing title", '{"id": "x"}')
    kept = rejects.sync()
    rejects.write(9, None, "invalid JSON", "{")  # written after the last checkpoint, then the process died
    rejects.close()
    RejectsFile(path, keep_bytes=kept).close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"line": 3, "id": "x", "reason": "missing title", "raw": '{"id": "x"}'}]


def test_only_overload_and_server_errors_are_worth_sending_again():
    assert is_retryable(429) and is_retryable(503) and is_retryable(0)
    assert not is_retryable(400) and not is_retryable(404)


def test_the_completion_record_lives_beside_the_checkpoint(tmp_path):
    assert completion_path(tmp_path / "shop.checkpoint.json") == tmp_path / "shop.done.json"
    assert completion_path(tmp_path / "cp.json") == tmp_path / "cp.done.json"
    (tmp_path / "shop.done.json").write_text('{"version": 1, "catalog": "x"}')  # not a whole record
    assert Completion.load(tmp_path / "shop.done.json") is None


def test_a_retrained_model_in_the_same_directory_is_another_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 16)
    before = model_identity(str(model))
    assert model_identity(str(model)) == before and before["model"] == str(model.resolve())
    (model / "weights.bin").write_bytes(b"\x01" * 17)
    assert model_identity(str(model)) != before
    assert model_identity(None) == {"model": "minilm"} and model_identity("hashing:16") == {"model": "hashing:16"}
