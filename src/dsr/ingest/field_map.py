"""The field map: which field of a shop's document holds each of dsr's item fields.

A shop's index names its fields its own way (`name`, `product.name`, `manufacturer.name`, ...). The
map says, for each of dsr's item fields (`title`, `description`, `brand`, `category`, `price` and the
numeric popularity fields), the path in the shop's `_source` to read it from; a dotted path goes into
objects. A field the user does not name is detected: the first of its usual names (`CANDIDATES`) that
holds a usable value in any of the sampled documents.

What a value becomes:

* a list of values: `category` joins its elements with " > " (a list of categories is, in every shop
  schema we know, a breadcrumb from the outermost in, which is dsr's category path); every other
  field takes the first element that is usable. A path through a list of objects
  (`categories.name` over `[{"name": ...}, ...]`) collects the field of every element;
* text fields take a string as it is, and a number or a boolean as its text; an object is not usable;
* numeric fields take a number, or a string that reads as one; anything else leaves the field out.

A field with no usable value is left out of the item; only a missing title keeps a document out of
the sidecar (the item tower reads the title first), and that is for the caller to reject.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsr.catalog.validate import NUMERIC_FIELDS
from dsr.errors import UsageError

TEXT_ITEM_FIELDS = ("title", "description", "brand", "category")
ITEM_FIELDS = (*TEXT_ITEM_FIELDS, *NUMERIC_FIELDS)
CATEGORY_SEPARATOR = " > "
REPORTED_FIELDS = ("title", "description", "brand", "category", "price")  # said even when none is found

CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "title": ("title", "name", "product_name", "productName", "product.name", "product.title", "item_name",
              "itemName"),
    "description": ("description", "desc", "long_description", "longDescription", "product.description",
                    "short_description", "shortDescription", "summary"),
    "brand": ("brand", "brand.name", "manufacturer", "manufacturer.name", "brand_name", "brandName", "vendor",
              "vendor.name", "maker"),
    "category": ("category", "categories", "category_path", "categoryPath", "category.name", "categories.name",
                 "breadcrumbs", "product_type", "productType", "department"),
    "price": ("price", "price.value", "price.amount", "sale_price", "salePrice", "current_price", "list_price",
              "offers.price"),
    "popularity": ("popularity", "popularity_score", "popularityScore"),
    "ctr": ("ctr", "click_through_rate"),
    "cvr": ("cvr", "conversion_rate"),
    "sales": ("sales", "sales_count", "salesCount", "units_sold", "unitsSold", "sold"),
    "rating": ("rating", "average_rating", "averageRating", "rating.average", "rating.value", "stars"),
    "review_count": ("review_count", "reviewCount", "reviews_count", "num_reviews", "numReviews",
                     "rating.count", "ratings_count"),
}
"""The usual names of each item field in shops' own schemas, most telling first."""


@dataclass(frozen=True)
class FieldSource:
    """Where one item field is read from, and whether the user named it or it was detected."""

    field: str
    path: str
    detected: bool

    def describe(self) -> str:
        return f"{self.field} <- {self.path} ({'detected' if self.detected else 'given'})"


@dataclass(frozen=True)
class FieldMap:
    """The paths of the item fields found; an item field absent here is left out of every item."""

    sources: tuple[FieldSource, ...]

    def path(self, field: str) -> str | None:
        return next((s.path for s in self.sources if s.field == field), None)

    def describe(self) -> list[str]:
        """One line per item field, for the user to check (`title <- name (detected)`)."""
        known = {s.field: s for s in self.sources}
        return [known[f].describe() if f in known else f"{f} <- (none found)"
                for f in ITEM_FIELDS if f in known or f in REPORTED_FIELDS]

    def item(self, doc_id: str, source: Mapping[str, Any]) -> dict[str, Any]:
        """dsr's item of the document: its id and the usable value of each mapped field."""
        out: dict[str, Any] = {"id": doc_id}
        for s in self.sources:
            value = field_value(s.field, lookup(source, s.path))
            if value is not None:
                out[s.field] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {s.field: {"path": s.path, "detected": s.detected} for s in self.sources}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMap:
        return cls(tuple(FieldSource(f, str(v["path"]), bool(v.get("detected"))) for f, v in data.items()))


def parse_field_options(options: Iterable[str]) -> dict[str, str]:
    """`--field title=product.name` options as {item field: path}; a bad one is a usage error."""
    given: dict[str, str] = {}
    for option in options:
        name, sep, path = option.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise UsageError(f"--field {option!r}: expected ITEM_FIELD=PATH, e.g. title=product.name")
        if name not in ITEM_FIELDS:
            raise UsageError(f"--field {option!r}: {name!r} is not an item field; use one of {', '.join(ITEM_FIELDS)}")
        if name in given:
            raise UsageError(f"--field names {name!r} twice")
        given[name] = path
    return given


def build_field_map(given: Mapping[str, str], sample: Sequence[Mapping[str, Any]]) -> FieldMap:
    """The user's paths, and for every other item field the first usual name usable in `sample`."""
    sources = [FieldSource(f, given[f], False) for f in ITEM_FIELDS if f in given]
    taken = set(given.values())
    for name in ITEM_FIELDS:
        if name in given:
            continue
        path = detect(name, sample, exclude=taken)
        if path is not None:
            sources.append(FieldSource(name, path, True))
            taken.add(path)
    return FieldMap(tuple(sorted(sources, key=lambda s: ITEM_FIELDS.index(s.field))))


def detect(field: str, sample: Sequence[Mapping[str, Any]], *, exclude: Iterable[str] = ()) -> str | None:
    """The first usual name of `field` that gives a usable value in any sampled document (not in `exclude`)."""
    skip = set(exclude)
    for path in CANDIDATES.get(field, ()):
        if path in skip:
            continue
        if any(field_value(field, lookup(doc, path)) is not None for doc in sample):
            return path
    return None


_MISSING = object()


def lookup(source: Any, path: str) -> Any:
    """The value at a dotted `path`; None when any step is missing. A key holding a dot is found too.

    Through a list of objects the path goes into each element and returns the list of what it found.
    """
    if not path:
        return source
    if isinstance(source, list):
        found = [v for v in (lookup(e, path) for e in source) if v is not None]
        flat = [x for v in found for x in (v if isinstance(v, list) else [v])]
        return flat or None
    if not isinstance(source, Mapping):
        return None
    if path in source:  # a field whose own name holds the dots
        return source[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        value = source.get(head, _MISSING)
        if value is not _MISSING:
            return lookup(value, ".".join(parts[cut:]))
    return None


def field_value(field: str, value: Any) -> Any:
    """What `value` becomes as the item field `field` (see the module docstring); None when unusable."""
    if field in NUMERIC_FIELDS:
        values = value if isinstance(value, list) else [value]
        return next((n for n in (_number(v) for v in values) if n is not None), None)
    if isinstance(value, list):
        texts = [t for t in (_text(v) for v in value) if t]
        if not texts:
            return None
        return CATEGORY_SEPARATOR.join(texts) if field == "category" else texts[0]
    return _text(value) or None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):
            try:
                number = kind(text)
            except ValueError:
                continue
            return number if number == number and abs(number) != float("inf") else None
    return None
