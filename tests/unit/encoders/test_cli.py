"""`dsr train retrieval` and `dsr encode` end to end on a tiny synthetic shop."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dsr.cli import cli
from dsr.encoders.model import TwoTowerModel, read_info
from dsr.logs.jsonl import write_sessions_jsonl
from dsr.logs.records import Session
from dsr.logs.synthetic import make_world, simulate_sessions


@pytest.mark.parametrize("args", [["train", "--help"], ["train", "retrieval", "--help"], ["encode", "--help"]])
def test_help(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.fixture()
def shop(tmp_path):
    world = make_world(300, 30, 20, seed=9)
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in world.catalog))
    logs = tmp_path / "logs.jsonl"
    write_sessions_jsonl(simulate_sessions(world, 400, seed=9), logs)
    with open(logs, "a") as fh:
        fh.write("{broken\n")
    return world, catalog, logs


def test_train_then_encode(shop, tmp_path):
    world, catalog, logs = shop
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, [
        "train", "retrieval", "--logs", str(logs), "--catalog", str(catalog), "--out", str(out),
        "--backbone", "none", "--epochs", "1", "--hidden", "32", "--dim", "16", "--no-progress", "--personalise",
    ])
    assert result.exit_code == 0, result.output
    assert "rejected line 401: bad JSON" in result.output
    assert f"saved {out}" in result.output
    model = TwoTowerModel.load(out)
    assert model.dim == 16 and model.config.features.use_user
    assert read_info(out)["triples"] > 0
    vecs = tmp_path / "items.npy"
    result = CliRunner().invoke(cli, ["encode", "--model", str(out), "--catalog", str(catalog), "--out", str(vecs),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    arr = np.load(vecs)
    assert arr.shape == (300, 16)
    assert json.loads(vecs.with_suffix(".ids.json").read_text()) == [r["id"] for r in world.catalog]


def test_logs_without_clicks_give_a_clear_error(shop, tmp_path):
    _world, catalog, _ = shop
    logs = tmp_path / "noclicks.jsonl"
    write_sessions_jsonl([Session(f"s{i}", "hammer", "u", float(i), ("p000001",)) for i in range(5)], logs)
    from dsr.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "retrieval", "--logs", str(logs), "--catalog", str(catalog), "--out", str(tmp_path / "m"),
              "--no-progress"])
    assert e.value.code == 3
