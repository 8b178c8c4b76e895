"""Preflight of an ingest: whose index it writes to, what it may write there, and what it refuses.

An index dsr created carries dsr's marker in its mapping `_meta` (`dsr.backends.cluster.dsr_marker`);
one created by a dsr older than the marker is recognised by its mapping being dsr's own. dsr writes
whole documents only to those, or to a shop's index the user handed over with `--replace-documents`.
Into any other existing index (the shop's primary store) dsr writes the vector field alone: it maps
it with a mapping update and sets it with partial updates, so every document keeps every field and
value, and a catalog row the index does not hold is reported, never created. Tombstones and
`--delete` then remove items from the sidecar only.

Everything here is read before anything is written (cluster or sidecar): a conflict (the vector
field already mapped as something else, or for vectors of another dimension; in replace mode, a
catalog field mapped with an incompatible type) is a `UsageError` and the run writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from dsr.backends.base import EMBEDDING_FIELD, IndexInfo, SearchBackend
from dsr.errors import UsageError

NOT_IN_INDEX = "not in the index; dsr does not create documents in an index it did not create"

TEXT_TYPES = frozenset({"text", "match_only_text", "keyword", "constant_keyword", "wildcard", "search_as_you_type"})
NUMERIC_TYPES = frozenset({"double", "float", "half_float", "scaled_float", "long", "integer", "short", "byte",
                           "unsigned_long"})
CATALOG_FIELD_TYPES = {
    "id": TEXT_TYPES, "title": TEXT_TYPES, "description": TEXT_TYPES, "brand": TEXT_TYPES,
    "category": TEXT_TYPES, "price": NUMERIC_TYPES, "attributes": frozenset({"object", "flattened"}),
}
"""The mapped types a catalog field dsr writes as a whole document can go into (replace mode)."""


class ClusterWrites(Enum):
    DOCUMENTS = "documents"  # index actions: whole documents replaced or created (dsr's own index)
    VECTORS = "vectors"  # partial updates that add the vector field to documents the index holds
    NOTHING = "nothing"  # the cluster is only read (which ids it holds); the sidecar alone is written


@dataclass(frozen=True)
class IngestTarget:
    """What an ingest may do to the cluster side, decided before anything is written."""

    index: str
    writes: ClusterWrites
    vectors: bool  # whether the vector field is written to the cluster
    create_index: bool  # the index does not exist yet: dsr creates it (and so owns it)
    add_vector_mapping: bool  # map the vector field on the existing index first
    write_index: str  # the concrete index (an alias resolved to its write index)
    notes: tuple[str, ...] = ()

    @property
    def shop_index(self) -> bool:
        """Whether the index is the shop's (not created by dsr, not handed over with --replace-documents)."""
        return self.writes is not ClusterWrites.DOCUMENTS


def plan_target(backend: SearchBackend, index: str, *, dims: int, embed_in_cluster: bool,
                replace_documents: bool) -> IngestTarget:
    """Read the index's mapping and decide what the ingest writes to it; a conflict is a `UsageError`."""
    return target_for(index, backend.index_info(index, EMBEDDING_FIELD), dims=dims,
                      embed_in_cluster=embed_in_cluster, replace_documents=replace_documents)


def target_for(index: str, info: IndexInfo | None, *, dims: int, embed_in_cluster: bool,
               replace_documents: bool) -> IngestTarget:
    """What an ingest may write to `index`, as read in `info` (None: no such index yet)."""
    if info is None:
        return IngestTarget(index, ClusterWrites.DOCUMENTS, embed_in_cluster, create_index=True,
                            add_vector_mapping=False, write_index=index)
    owned = info.owned_by_dsr
    conflicts = _vector_conflicts(info, dims) if embed_in_cluster else []
    if replace_documents and not owned:
        conflicts += _catalog_conflicts(info)
    if conflicts:
        where = index if info.name == index else f"{index} (write index {info.name})"
        raise UsageError(f"cannot ingest into {where}: " + "; ".join(conflicts) + "; nothing was written")
    notes: list[str] = []
    mapped = info.vector_dims is not None
    vectors = embed_in_cluster and (mapped or info.knn_unavailable is None)
    if embed_in_cluster and not vectors:
        notes.append(f"the vectors are written to the sidecar only, not to {index}: {info.knn_unavailable}")
    if owned or replace_documents:
        return IngestTarget(index, ClusterWrites.DOCUMENTS, vectors, create_index=False,
                            add_vector_mapping=vectors and not mapped, write_index=info.name, notes=tuple(notes))
    if not embed_in_cluster:
        notes.append(f"{index} is not an index dsr created and --no-embedding-field is set: nothing is written "
                     "to it (the sidecar alone is written)")
    elif vectors and info.vector_in_source:
        notes.append(f"{index} is not an index dsr created: dsr adds only the field {info.vector_field!r} to its "
                     "documents, which keeps the vector in their stored _source (an existing index's mapping cannot "
                     "exclude it): reads of _source now return it; use --no-embedding-field to leave the index "
                     "untouched (sidecar only)")
    return IngestTarget(index, ClusterWrites.VECTORS if vectors else ClusterWrites.NOTHING, vectors,
                        create_index=False, add_vector_mapping=vectors and not mapped, write_index=info.name,
                        notes=tuple(notes))


def _vector_conflicts(info: IndexInfo, dims: int) -> list[str]:
    if info.vector_type is None:
        return []
    if info.vector_dims is None:
        return [f"the field {info.vector_field!r} dsr writes its vectors to is already mapped as "
                f"{info.vector_type!r}, not as a kNN vector (pass --no-embedding-field for the sidecar alone)"]
    if info.vector_dims != dims:
        return [f"the field {info.vector_field!r} holds vectors of {info.vector_dims} dimensions and the "
                f"encoder makes {dims}"]
    return []


def _catalog_conflicts(info: IndexInfo) -> list[str]:
    out = []
    for name, allowed in CATALOG_FIELD_TYPES.items():
        mapped = info.field_types.get(name)
        if mapped is not None and mapped not in allowed:
            out.append(f"the catalog field {name!r} is mapped as {mapped!r} (dsr writes it as one of "
                       f"{', '.join(sorted(allowed))})")
    return out
