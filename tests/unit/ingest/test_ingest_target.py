"""What an ingest may write to an index, decided from its mapping before anything is written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dsr.backends.base import IndexInfo, IndexSpec
from dsr.backends.cluster import catalog_properties, has_dsr_catalog_mapping
from dsr.cli import cli
from dsr.errors import UsageError
from dsr.ingest.target import ClusterWrites, plan_target, target_for

SHOP_FIELDS = {"title": "text", "stock": "integer", "sku": "keyword"}


def shop(**overrides) -> IndexInfo:
    return IndexInfo(**{"name": "shop", "created_by_dsr": False, "recognised_as_dsr": False,
                        "field_types": SHOP_FIELDS, "vector_field": "embedding", "vector_in_source": True,
                        **overrides})


def plan(info: IndexInfo | None, *, embed: bool = True, replace: bool = False):
    return target_for("shop", info, dims=16, embed_in_cluster=embed, replace_documents=replace)


def test_a_new_index_is_created_by_dsr_and_gets_whole_documents():
    target = plan(None)
    assert target.create_index and target.writes is ClusterWrites.DOCUMENTS and target.vectors
    assert not target.shop_index and not target.notes


def test_a_shop_index_gets_the_vector_field_alone_and_the_source_consequence_is_said():
    target = plan(shop())
    assert target.writes is ClusterWrites.VECTORS and target.add_vector_mapping and target.shop_index
    assert len(target.notes) == 1 and "_source" in target.notes[0] and "--no-embedding-field" in target.notes[0]


def test_a_shop_index_whose_vector_is_already_mapped_is_not_mapped_again():
    target = plan(shop(vector_type="dense_vector", vector_dims=16, vector_in_source=False))
    assert target.writes is ClusterWrites.VECTORS and not target.add_vector_mapping and not target.notes


def test_without_knn_or_with_no_embedding_field_a_shop_index_is_only_read():
    no_knn = plan(shop(knn_unavailable="not created with index.knn: true"))
    assert no_knn.writes is ClusterWrites.NOTHING and not no_knn.vectors
    assert no_knn.notes == ("the vectors are written to the sidecar only, not to shop: not created with "
                            "index.knn: true",)
    sidecar_only = plan(shop(), embed=False)
    assert sidecar_only.writes is ClusterWrites.NOTHING and len(sidecar_only.notes) == 1


@pytest.mark.parametrize(("info", "message"), [
    (shop(vector_type="float"), "'embedding' .* already mapped as 'float', not as a kNN vector"),
    (shop(vector_type="object"), "already mapped as 'object'"),
    (shop(vector_type="dense_vector", vector_dims=384), "vectors of 384 dimensions and the encoder makes 16"),
])
def test_a_conflicting_vector_field_is_a_usage_error(info, message):
    with pytest.raises(UsageError, match=message):
        plan(info)
    assert plan(info, embed=False).writes is ClusterWrites.NOTHING  # no vector written: no conflict


def test_catalog_fields_conflict_only_when_whole_documents_would_replace_the_shops():
    info = shop(field_types={**SHOP_FIELDS, "price": "date", "title": "integer"})
    with pytest.raises(UsageError, match=r"'title' is mapped as 'integer'.*'price' is mapped as 'date'"):
        plan(info, replace=True)
    assert plan(info).writes is ClusterWrites.VECTORS


def test_replace_documents_hands_a_shop_index_over_to_dsr():
    target = plan(shop(), replace=True)
    assert target.writes is ClusterWrites.DOCUMENTS and target.vectors and target.add_vector_mapping
    assert not target.shop_index


def test_an_index_of_an_older_dsr_is_told_by_its_catalog_mapping():
    assert has_dsr_catalog_mapping(catalog_properties(IndexSpec("x", dims=8), {"type": "dense_vector"}))
    assert not has_dsr_catalog_mapping({"title": {"type": "text"}, "sku": {"type": "keyword"}})
    target = plan(shop(recognised_as_dsr=True, vector_type="dense_vector", vector_dims=16))
    assert target.writes is ClusterWrites.DOCUMENTS and not target.add_vector_mapping


def test_an_embedded_index_is_always_dsr_s(embedded_backend, index_name):
    assert plan_target(embedded_backend, index_name, dims=16, embed_in_cluster=True,
                       replace_documents=False).create_index
    embedded_backend.ensure_index(IndexSpec(index_name, dims=16))
    target = plan_target(embedded_backend, index_name, dims=16, embed_in_cluster=True, replace_documents=False)
    assert target.writes is ClusterWrites.DOCUMENTS and not target.create_index and not target.add_vector_mapping


def test_ingest_help_documents_replace_documents_and_what_delete_does_to_a_shop_index():
    result = CliRunner().invoke(cli, ["ingest", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "--replace-documents" in text
    assert "from the sidecar only, unless --replace-documents" in text
