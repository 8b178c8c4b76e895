"""dsr.catalog: the catalog item every layer sees, the readers of catalog files and row validation.

The leaf of dsr's layers: training, evaluation, ingest and serving all read items through it.
"""

from dsr.catalog.fields import (
    EMBEDDING_FIELD,
    TEXT_FIELD_BOOSTS,
    TEXT_FIELDS,
    Item,
    category_levels,
    item_text,
    numeric_field,
)
from dsr.catalog.readers import FORMATS, SourceRow, detect_format, read_catalog, read_catalog_items

__all__ = [
    "EMBEDDING_FIELD",
    "FORMATS",
    "TEXT_FIELDS",
    "TEXT_FIELD_BOOSTS",
    "Item",
    "SourceRow",
    "category_levels",
    "detect_format",
    "item_text",
    "numeric_field",
    "read_catalog",
    "read_catalog_items",
]
