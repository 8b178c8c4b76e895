"""The serve configuration file: which indexes `dsr serve` answers hybrid, and with what.

A shop's front end cannot be changed to add `ext.dsr` to every search, so `dsr serve --config FILE`
names, per index, alias or pattern, whether its searches are answered hybrid by default, with which
models and sidecar, the fusion defaults, and which query forms carry the shopper's text. TOML or YAML
(by the file's extension), one `[[index]]` table (a list under `index:` in YAML) per entry, and an
optional `[defaults]` table every entry starts from:

    [defaults]
    model = "models/dsr"           # as `dsr ingest --model`: a model directory, "minilm", "hashing:256"
    ranker = "models/ranker"

    [[index]]
    name = "products"              # an index, an alias, or a pattern such as "products-*"
    hybrid = true                  # searches without ext.dsr are answered hybrid (default true)
    sidecar = ".dsr/sidecar/products"   # default: DATA_DIR/sidecar/INDEX, else the engine's kNN
    text_queries = ["match", "multi_match", "combined_fields", "simple_query_string"]
    k = 100                        # vector neighbours
    term_k = 100                   # term matches
    rerank = true
    rerank_top = 100
    fusion = { mode = "rrf", rrf_k = 60 }   # or mode = "linear", normalization, weights = {term, vector}

Relative paths (`model` when it names a directory, `ranker`, `sidecar`) are read from the file's own
folder, so a configuration travels with its models. Every key is checked when `dsr serve` starts;
an unknown one is an error that names it. `dsr serve --index NAME` is the one-line form: one entry,
answering hybrid only searches that carry `ext.dsr` (unless `--hybrid-by-default`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from dsr.errors import UsageError
from dsr.search.fusion import FusionConfig, FusionMode, Normalization
from dsr.search.result import TERM, VECTOR
from dsr.search.shop_query import KNOWN_TEXT_FORMS, TEXT_QUERY_FORMS

_FUSION_KEYS = {"mode", "rrf_k", "normalization", "weights"}


@dataclass(frozen=True)
class ServedEntry:
    """One index, alias or pattern that `dsr serve` answers hybrid, and how."""

    name: str
    hybrid: bool = True  # plain searches (without ext.dsr) are answered hybrid
    model: str | None = "minilm"
    ranker: Path | None = None
    sidecar: str | None = None
    text_queries: tuple[str, ...] = TEXT_QUERY_FORMS
    k: int = 100
    term_k: int = 100
    rerank: bool = True
    rerank_top: int = 100
    fusion: FusionConfig = field(default_factory=FusionConfig)

    @property
    def is_pattern(self) -> bool:
        return any(c in self.name for c in "*?")


def load_serve_config(path: Path, *, max_k: int = 1000) -> tuple[ServedEntry, ...]:
    """The entries of a serve configuration file (TOML, or YAML for `.yaml`/`.yml`), checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the serve configuration {path}: {e.strerror or e}") from None
    try:
        raw = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'TOML'}: "
                         f"{e}") from None
    if not isinstance(raw, Mapping):
        raise UsageError(f"{path}: the configuration must be a table with an [[index]] list")
    unknown = set(raw) - {"defaults", "index"}
    if unknown:
        raise UsageError(f"{path}: unknown top-level key(s) {sorted(unknown)}; known: defaults, index")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise UsageError(f"{path}: [defaults] must be a table")
    entries = raw.get("index")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: at least one [[index]] entry is needed")
    out = []
    for number, spec in enumerate(entries, start=1):
        if not isinstance(spec, Mapping):
            raise UsageError(f"{path}: [[index]] entry {number} must be a table")
        out.append(_entry({**defaults, **spec}, f"{path}: [[index]] entry {number}", path.parent, max_k))
    names = [e.name for e in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"{path}: index name(s) {repeated} appear more than once")
    return tuple(out)


def _entry(spec: Mapping[str, Any], where: str, base: Path, max_k: int) -> ServedEntry:
    known = {f.name for f in fields(ServedEntry)}
    unknown = set(spec) - known
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or "," in name:
        raise UsageError(f"{where}: [name] must be one index, alias or pattern (no commas)")
    entry = ServedEntry(name=name.strip())
    values: dict[str, Any] = {}
    for key in ("hybrid", "rerank"):
        if key in spec:
            if not isinstance(spec[key], bool):
                raise UsageError(f"{where}: [{key}] must be true or false")
            values[key] = spec[key]
    for key in ("k", "term_k", "rerank_top"):
        if key in spec:
            value = spec[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max_k:
                raise UsageError(f"{where}: [{key}] must be an integer from 0 to {max_k}")
            values[key] = value
    if values.get("k", entry.k) == 0 and values.get("term_k", entry.term_k) == 0:
        raise UsageError(f"{where}: k and term_k cannot both be 0")
    if "model" in spec:
        model = spec["model"]
        if model is not None and not isinstance(model, str):
            raise UsageError(f"{where}: [model] must be a string")
        values["model"] = _model(model, base)
    if "ranker" in spec:
        values["ranker"] = _local_path(spec["ranker"], base, where, "ranker", must_exist=True)
    if "sidecar" in spec:
        sidecar = spec["sidecar"]
        if sidecar is not None and not isinstance(sidecar, str):
            raise UsageError(f"{where}: [sidecar] must be a directory or an http(s) URL")
        values["sidecar"] = (sidecar if sidecar is None or sidecar.startswith(("http://", "https://"))
                             else str(_local_path(sidecar, base, where, "sidecar", must_exist=False)))
    if "text_queries" in spec:
        forms = spec["text_queries"]
        if not isinstance(forms, list) or not forms or not all(isinstance(f, str) for f in forms):
            raise UsageError(f"{where}: [text_queries] must be a list of query forms")
        bad = sorted(set(forms) - set(KNOWN_TEXT_FORMS))
        if bad:
            raise UsageError(f"{where}: [text_queries] unknown query form(s) {bad}; known: {list(KNOWN_TEXT_FORMS)}")
        values["text_queries"] = tuple(forms)
    if "fusion" in spec:
        values["fusion"] = _fusion(spec["fusion"], where)
    return replace(entry, **values)


def _fusion(spec: Any, where: str) -> FusionConfig:
    if not isinstance(spec, Mapping):
        raise UsageError(f"{where}: [fusion] must be a table (mode, rrf_k, normalization, weights)")
    unknown = set(spec) - _FUSION_KEYS
    if unknown:
        raise UsageError(f"{where}: [fusion] unknown key(s) {sorted(unknown)}; known: {sorted(_FUSION_KEYS)}")
    try:
        mode = FusionMode(spec.get("mode", "rrf"))
        norm = Normalization(spec.get("normalization", "min_max"))
    except ValueError as e:
        raise UsageError(f"{where}: [fusion] {e}") from None
    rrf_k = spec.get("rrf_k", 60)
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 1:
        raise UsageError(f"{where}: [fusion.rrf_k] must be an integer >= 1")
    weights = spec.get("weights", {})
    if not isinstance(weights, Mapping) or set(weights) - {TERM, VECTOR} or not all(
            isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights.values()):
        raise UsageError(f"{where}: [fusion.weights] must map term and/or vector to numbers >= 0")
    if weights and not any(weights.values()):
        raise UsageError(f"{where}: [fusion.weights] at least one weight must be > 0")
    return FusionConfig(mode, rrf_k, norm, {k: float(v) for k, v in weights.items()})


def _model(model: str | None, base: Path) -> str | None:
    """A model spec; a relative directory is read from the configuration's folder."""
    if model is None or model in ("", "none"):
        return None
    candidate = base / model
    if not Path(model).is_absolute() and candidate.is_dir():
        return str(candidate)
    return model


def _local_path(value: Any, base: Path, where: str, key: str, *, must_exist: bool) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: [{key}] must be a path")
    path = Path(value) if Path(value).is_absolute() else base / value
    if must_exist and not path.is_dir():
        raise UsageError(f"{where}: [{key}] {path} is not a directory")
    return path
