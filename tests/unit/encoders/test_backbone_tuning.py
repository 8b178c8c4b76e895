"""Fine-tuning the MiniLM backbone: it learns from triples, travels inside the model directory as
safetensors, and a backbone folder that could run code or unpickle is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dsr.encoders.backbone import check_backbone_dir, minilm_path
from dsr.encoders.backbone_tuning import BACKBONE_SCHEDULE, BackboneTuneConfig, tune_backbone
from dsr.encoders.model import BACKBONE_DIR, TwoTowerModel
from dsr.errors import InputError, ModelFormatError
from dsr.logs.triples import Triple

pytestmark = pytest.mark.slow

# a shop word the untuned MiniLM cannot know: "zorblax" means a drill
ITEMS = [
    {"id": "drill", "title": "cordless power drill 18v"},
    {"id": "hammer", "title": "claw hammer steel handle"},
    {"id": "paint", "title": "white interior wall paint"},
    {"id": "hose", "title": "garden hose 50 ft"},
    {"id": "saw", "title": "circular saw blade"},
    {"id": "tile", "title": "ceramic floor tile"},
]
TEXTS = {it["id"]: it["title"] for it in ITEMS}
TRIPLES = [Triple("zorblax", "drill", neg) for neg in ("hammer", "paint", "hose")] + \
          [Triple("zorblax 18v", "drill", "saw"), Triple("wall colour", "paint", "tile"),
           Triple("hose pipe", "hose", "drill")]


def _margin(encode_queries, encode_items) -> float:
    q = encode_queries(["zorblax"])
    v = encode_items(ITEMS)
    scores = (v @ q[0]).tolist()
    return scores[0] - max(scores[1:])


@pytest.fixture(scope="module")
def tuned():
    model, result = tune_backbone(TRIPLES, TEXTS, BackboneTuneConfig(schedule=BACKBONE_SCHEDULE.replace(
        epochs=6, batch_size=6, lr=1e-4, progress=False)), device="cpu")
    return model, result


def test_tuning_moves_the_shop_word_onto_its_product(tuned):
    from dsr.encoders.backbone import MiniLMEncoder

    model, result = tuned
    untuned = MiniLMEncoder(device="cpu")
    after = MiniLMEncoder(device="cpu", model=model)
    assert result.steps == 6 and result.last_loss < result.first_loss
    assert _margin(after.encode_queries, after.encode_items) > _margin(untuned.encode_queries, untuned.encode_items)
    assert _margin(after.encode_queries, after.encode_items) > 0


def test_a_model_with_a_tuned_backbone_round_trips_through_its_directory(tuned, tmp_path):
    model, _ = tuned
    two_tower = TwoTowerModel.build(ITEMS, backbone="minilm", hidden=(32,), text_buckets=2, numeric_fields=(),
                                    backbone_tuned=True, device="cpu")
    two_tower.attach_tuned_backbone(model)
    before = two_tower.encode_queries(["zorblax", "garden hose"])
    out = two_tower.save(tmp_path / "m")
    assert (out / BACKBONE_DIR / "model.safetensors").is_file()
    assert not list((out / BACKBONE_DIR).glob("*.bin"))
    loaded = TwoTowerModel.load(out, device="cpu")
    np.testing.assert_allclose(loaded.encode_queries(["zorblax", "garden hose"]), before, atol=1e-5)
    again = loaded.save(tmp_path / "copy")  # a loaded model carries its backbone along when saved again
    np.testing.assert_allclose(TwoTowerModel.load(again, device="cpu").encode_queries(["zorblax"]), before[:1],
                               atol=1e-5)


def test_a_model_missing_its_tuned_backbone_is_refused(tuned, tmp_path):
    model, _ = tuned
    two_tower = TwoTowerModel.build(ITEMS, backbone="minilm", hidden=(32,), text_buckets=2, numeric_fields=(),
                                    backbone_tuned=True, device="cpu")
    two_tower.attach_tuned_backbone(model)
    out = two_tower.save(tmp_path / "m")
    shutil.rmtree(out / BACKBONE_DIR)
    with pytest.raises(ModelFormatError, match="not a backbone folder"):
        TwoTowerModel.load(out, device="cpu")


def test_backbone_folders_that_could_run_code_or_unpickle_are_refused(tmp_path):
    good = tmp_path / "good"
    shutil.copytree(minilm_path(), good)
    assert check_backbone_dir(good) == good

    pickled = tmp_path / "pickled"
    shutil.copytree(good, pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelFormatError, match="pickled"):
        check_backbone_dir(pickled)

    foreign = tmp_path / "foreign"
    shutil.copytree(good, foreign)
    modules = json.loads((foreign / "modules.json").read_text())
    modules[0]["type"] = "os.system"
    (foreign / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match=r"os\.system"):
        check_backbone_dir(foreign)


def test_tuning_without_usable_triples_is_a_clear_error():
    with pytest.raises(InputError, match="no training triple"):
        tune_backbone([Triple("q", "unknown-item", None)], TEXTS,
                      BackboneTuneConfig(BACKBONE_SCHEDULE.replace(progress=False)))


def test_tuning_can_go_on_from_a_tuned_backbone_and_refuses_one_that_could_unpickle(tuned, tmp_path):
    from dsr.encoders.backbone import MiniLMEncoder

    model, _ = tuned
    model.save(str(tmp_path / "first"), safe_serialization=True)
    first = MiniLMEncoder(device="cpu", model=model)
    config = BackboneTuneConfig(schedule=BACKBONE_SCHEDULE.replace(epochs=1, batch_size=6, lr=1e-6, progress=False),
                                start=str(tmp_path / "first"))
    assert BackboneTuneConfig.from_config(config.to_config()).start == str(tmp_path / "first")
    again, result = tune_backbone(TRIPLES, TEXTS, config, device="cpu")
    after = MiniLMEncoder(device="cpu", model=again)
    # a tiny learning rate: the second tuning starts where the first ended, not from the stock MiniLM
    assert result.steps == 1
    assert _margin(after.encode_queries, after.encode_items) == pytest.approx(
        _margin(first.encode_queries, first.encode_items), abs=0.05)
    untuned = MiniLMEncoder(device="cpu")
    stock = _margin(untuned.encode_queries, untuned.encode_items)
    assert abs(_margin(after.encode_queries, after.encode_items) - stock) > 0.1  # the stock start looks different
    (tmp_path / "first" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="pickled"):
        tune_backbone(TRIPLES, TEXTS, config, device="cpu")
