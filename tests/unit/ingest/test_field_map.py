"""The field map of `dsr attach`: the shop's field names onto dsr's item fields, given or detected."""

from __future__ import annotations

import pytest

from dsr.errors import UsageError
from dsr.ingest.field_map import FieldMap, FieldSource, build_field_map, lookup, parse_field_options


def shop_doc(**extra):
    return {"product": {"name": "Trail Runner", "description": "Light shoe"},
            "manufacturer": {"name": "Acme", "country": "DE"},
            "categories": ["Shoes", "Running"], "price": "59.90", **extra}


def test_detection_picks_the_obvious_names_of_each_field():
    sample = [{"name": "Lamp", "brand": "Lumo", "category_path": "Home > Light", "price": 12, "rating": 4.5,
               "reviewCount": 31}]
    fmap = build_field_map({}, sample)
    assert fmap.describe() == [
        "title <- name (detected)",
        "description <- (none found)",
        "brand <- brand (detected)",
        "category <- category_path (detected)",
        "price <- price (detected)",
        "rating <- rating (detected)",
        "review_count <- reviewCount (detected)",
    ]


def test_detection_goes_into_objects_when_the_plain_name_holds_one():
    fmap = build_field_map({}, [shop_doc()])
    assert fmap.path("title") == "product.name"
    assert fmap.path("brand") == "manufacturer.name"  # `manufacturer` itself is an object: not usable
    assert fmap.path("description") == "product.description"
    assert fmap.path("category") == "categories"


def test_a_field_is_detected_when_any_sampled_document_has_it():
    fmap = build_field_map({}, [{"title": "A"}, {"title": "B", "brand": {"name": "Zed"}}])
    assert fmap.path("brand") == "brand.name"


def test_given_paths_win_over_detection_and_say_so():
    fmap = build_field_map({"title": "product.description"}, [shop_doc(title="Ignored")])
    assert fmap.path("title") == "product.description"
    assert "title <- product.description (given)" in fmap.describe()
    assert "brand <- manufacturer.name (detected)" in fmap.describe()


def test_an_item_takes_the_mapped_values_with_lists_joined_or_first_and_numbers_read():
    fmap = build_field_map({}, [shop_doc()])
    item = fmap.item("sku-1", shop_doc())
    assert item == {"id": "sku-1", "title": "Trail Runner", "description": "Light shoe", "brand": "Acme",
                    "category": "Shoes > Running", "price": 59.9}


def test_a_list_of_titles_or_brands_gives_its_first_usable_element():
    fmap = FieldMap((FieldSource("title", "names", False), FieldSource("brand", "brands", False)))
    assert fmap.item("x", {"names": ["", "Second", "Third"], "brands": [{"no": 1}, "Acme"]}) == {
        "id": "x", "title": "Second", "brand": "Acme"}


def test_a_path_through_a_list_of_objects_collects_each_element():
    doc = {"categories": [{"name": "Home"}, {"name": "Kitchen"}, {"other": 1}]}
    assert lookup(doc, "categories.name") == ["Home", "Kitchen"]
    fmap = FieldMap((FieldSource("category", "categories.name", False),))
    assert fmap.item("x", doc) == {"id": "x", "category": "Home > Kitchen"}


def test_unusable_values_are_left_out_of_the_item():
    fmap = FieldMap((FieldSource("title", "t", False), FieldSource("price", "p", False),
                     FieldSource("brand", "b", False)))
    assert fmap.item("x", {"t": {"nested": "object"}, "p": "cheap", "b": "  "}) == {"id": "x"}
    assert fmap.item("y", {"t": 42, "p": [None, "7"]}) == {"id": "y", "title": "42", "price": 7}


def test_a_key_that_holds_dots_itself_is_found():
    assert lookup({"product.name": "Flat"}, "product.name") == "Flat"
    assert lookup({"a": {"b.c": 3}}, "a.b.c") == 3
    assert lookup({"a": {"b": 1}}, "a.x") is None


def test_the_map_survives_a_round_trip_through_the_checkpoint():
    fmap = build_field_map({"brand": "manufacturer.name"}, [shop_doc()])
    assert FieldMap.from_dict(fmap.to_dict()) == fmap


def test_field_options_are_parsed_and_bad_ones_refused():
    assert parse_field_options(["title=name", " brand = manufacturer.name "]) == {
        "title": "name", "brand": "manufacturer.name"}
    for bad in (["title"], ["title="], ["colour=paint"], ["title=a", "title=b"]):
        with pytest.raises(UsageError):
            parse_field_options(bad)
