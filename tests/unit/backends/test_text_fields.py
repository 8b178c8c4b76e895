"""The catalog's text fields and their boosts, defined once, as each engine spells them."""

from __future__ import annotations

import pytest

from dsr.backends.cluster import term_query
from dsr.backends.embedded import TANTIVY_BOOSTS, TANTIVY_FIELDS
from dsr.catalog import TEXT_FIELD_BOOSTS, TEXT_FIELDS
from dsr.catalog.validate import validate_row


def test_the_cluster_matches_the_text_fields_with_their_boosts():
    assert term_query("cordless drill", None, None) == {"multi_match": {
        "query": "cordless drill", "fields": ["title^3", "brand.text^2", "category.text^1.5", "description"],
        "type": "best_fields", "tie_breaker": 0.3}}


def test_the_embedded_index_matches_the_same_fields_with_the_same_boosts():
    assert TANTIVY_BOOSTS == {"title": 3.0, "brand_text": 2.0, "category_text": 1.5, "description": 1.0}
    assert list(TANTIVY_FIELDS.values()) == list(TEXT_FIELD_BOOSTS)


@pytest.mark.parametrize("name", TEXT_FIELDS)
def test_every_text_field_is_validated_as_a_string(name):
    row = {"id": "a", "title": "drill", name: 42}
    assert validate_row(row).reason == f"{name} must be a string, got int"
