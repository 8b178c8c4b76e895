"""The distillation commands, from files to a served student, on the synthetic world."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dsr.backends.base import IndexSpec
from dsr.backends.embedded import EmbeddedBackend
from dsr.cli import cli
from dsr.reranker.base import Candidate
from dsr.reranker.distill import CrossEncoderTeacher, read_scored
from dsr.reranker.siamese import SiameseRanker


@pytest.mark.parametrize("args", [["distill", "--help"], ["distill", "augment", "--help"],
                                  ["distill", "train", "--help"], ["train", "teacher", "--help"]])
def test_help(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_teacher_augment_student_from_the_command_line(tiny_world, tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in tiny_world.world.catalog))
    queries = list(tiny_world.judged)[:8]
    judgments = tmp_path / "judgments.tsv"
    lines = ["query\titem_id\tgrade"] + [f"{q}\t{i}\t{g}" for q in queries for i, g in tiny_world.judged[q].items()]
    judgments.write_text("\n".join([*lines, "bad\tline\tnot-a-number"]) + "\n")
    data_dir = tmp_path / "data"
    backend = EmbeddedBackend(data_dir / "embedded")
    backend.ensure_index(IndexSpec("items"))
    assert backend.bulk_upsert("items", tiny_world.world.catalog).ok
    backend.close()
    runner = CliRunner()

    r = runner.invoke(cli, ["train", "teacher", "--judgments", str(judgments), "--catalog", str(catalog),
                            "--out", str(tmp_path / "teacher"), "--max-length", "16", "--max-pairs", "24",
                            "--batch-size", "12", "--freeze-layers", "5", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "rejected" in r.output and "saved" in r.output
    teacher = CrossEncoderTeacher.load(tmp_path / "teacher")
    assert teacher.scale.low == 0 and teacher.scale.high == 3

    r = runner.invoke(cli, ["--engine", "embedded", "--data-dir", str(data_dir), "distill", "augment",
                            "--teacher", str(tmp_path / "teacher"), "--catalog", str(catalog),
                            "--judgments", str(judgments), "--index", "items", "--k", "5", "--title-queries", "3",
                            "--out", str(tmp_path / "scored"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "3 queries written from titles" in r.output
    rows = list(read_scored(tmp_path / "scored"))
    assert {r.source for r in rows} == {"judged", "bm25"}
    written = {r.query for r in rows} - set(queries)
    assert set(queries) <= {r.query for r in rows} and len(written) == 3
    assert all({r.source for r in rows if r.query == q} == {"bm25"} for q in written)  # no labels: BM25 only

    r = runner.invoke(cli, ["distill", "train", "--scored", str(tmp_path / "scored"), "--catalog", str(catalog),
                            "--out", str(tmp_path / "student"), "--epochs", "2", "--hidden", "16,8,4",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    student = SiameseRanker.load(tmp_path / "student", catalog=tiny_world.catalog)
    scores = student.score(queries[0], [Candidate(item=tiny_world.catalog[i]) for i in tiny_world.judged[queries[0]]])
    assert scores.shape == (len(tiny_world.judged[queries[0]]),) and np.isfinite(scores).all()

    validation = tmp_path / "validation.tsv"  # two of the augmented queries, held out for early stopping
    validation.write_text("\n".join([lines[0], *(ln for ln in lines[1:] if ln.split("\t")[0] in queries[:2])]) + "\n")
    r = runner.invoke(cli, ["distill", "train", "--scored", str(tmp_path / "scored"), "--catalog", str(catalog),
                            "--out", str(tmp_path / "student-val"), "--validation", str(validation), "--epochs", "3",
                            "--patience", "1", "--hidden", "16,8,4", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "validation: 2 held-out queries" in r.output and "kept epoch" in r.output

    nothing = tmp_path / "unseen.tsv"
    nothing.write_text("query\titem_id\tgrade\nnot augmented\t1\t2\n")
    r = runner.invoke(cli, ["distill", "train", "--scored", str(tmp_path / "scored"), "--catalog", str(catalog),
                            "--out", str(tmp_path / "student-none"), "--validation", str(nothing), "--no-progress"])
    assert r.exit_code != 0 and "augment those queries too" in str(r.exception)


def test_augment_without_queries_is_a_usage_error(tmp_path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"id": "1", "title": "x"}\n')
    (tmp_path / "t").mkdir()
    r = CliRunner().invoke(cli, ["distill", "augment", "--teacher", str(tmp_path / "t"), "--catalog", str(catalog),
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "--queries" in str(r.exception) or "--queries" in r.output
