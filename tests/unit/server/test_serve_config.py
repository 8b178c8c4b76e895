"""The serve configuration file of `dsr serve --config`: TOML or YAML, every key checked when it is loaded.

Each `[[index]]` entry starts from `[defaults]`; relative paths are read from the file's own folder;
every bad value or unknown key is a `UsageError` (exit code 2) that names the key and the entry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr.errors import UsageError
from dsr.search.fusion import FusionConfig, FusionMode, Normalization
from dsr.search.shop_query import TEXT_QUERY_FORMS
from dsr.server.serve_config import ServedEntry, load_serve_config

TOML = """
[defaults]
model = "hashing:64"
ranker = "models/ranker"
k = 50

[[index]]
name = "products"
sidecar = "sidecars/products"
text_queries = ["multi_match", "match"]
term_k = 80
rerank_top = 40
fusion = { mode = "linear", normalization = "z_score", weights = { term = 1.0, vector = 2 } }

[[index]]
name = "archive-*"
hybrid = false
rerank = false
k = 20
fusion = { rrf_k = 10 }
"""

YAML = """
defaults:
  model: hashing:64
  ranker: models/ranker
  k: 50
index:
  - name: products
    sidecar: sidecars/products
    text_queries: [multi_match, match]
    term_k: 80
    rerank_top: 40
    fusion: {mode: linear, normalization: z_score, weights: {term: 1.0, vector: 2}}
  - name: archive-*
    hybrid: false
    rerank: false
    k: 20
    fusion: {rrf_k: 10}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A configuration's folder holding the ranker directory it names."""
    (tmp_path / "models" / "ranker").mkdir(parents=True)
    return tmp_path


def write(folder: Path, text: str, name: str = "serve.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, text: str, name: str = "serve.toml", **kw: int) -> tuple[ServedEntry, ...]:
    return load_serve_config(write(folder, text, name), **kw)


def error(folder: Path, text: str, name: str = "serve.toml", **kw: int) -> str:
    with pytest.raises(UsageError) as e:
        load(folder, text, name, **kw)
    assert e.value.exit_code == 2
    return str(e.value)


def test_the_toml_example_loads_every_key(folder):
    products, archive = load(folder, TOML)
    assert products == ServedEntry(
        name="products", hybrid=True, model="hashing:64", ranker=folder / "models" / "ranker",
        sidecar=str(folder / "sidecars" / "products"), text_queries=("multi_match", "match"), k=50, term_k=80,
        rerank=True, rerank_top=40,
        fusion=FusionConfig(FusionMode.LINEAR, 60, Normalization.Z_SCORE, {"term": 1.0, "vector": 2.0}))
    assert archive == ServedEntry(name="archive-*", hybrid=False, model="hashing:64",
                                  ranker=folder / "models" / "ranker", k=20, rerank=False,
                                  fusion=FusionConfig(rrf_k=10))


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_the_same_configuration_in_yaml_loads_to_the_same_entries(folder, suffix):
    assert load(folder, YAML, "serve" + suffix) == load(folder, TOML)


def test_an_entry_with_only_a_name_gets_the_defaults():
    assert ServedEntry("products") == ServedEntry(
        name="products", hybrid=True, model="minilm", ranker=None, sidecar=None, text_queries=TEXT_QUERY_FORMS,
        k=100, term_k=100, rerank=True, rerank_top=100, fusion=FusionConfig())


def test_an_entry_with_only_a_name_loads_to_the_defaults(folder):
    assert load(folder, '[[index]]\nname = "products"\n') == (ServedEntry("products"),)


def test_an_entry_overrides_the_defaults_table(folder):
    (entry,) = load(folder, '[defaults]\nk = 10\nrerank = false\n[[index]]\nname = "p"\nk = 30\n')
    assert (entry.k, entry.rerank) == (30, False)


def test_relative_paths_are_read_from_the_configurations_folder(folder, monkeypatch, tmp_path_factory):
    (folder / "models" / "dsr").mkdir()
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    (entry,) = load(folder, '[[index]]\nname = "p"\nmodel = "models/dsr"\nranker = "models/ranker"\n'
                            'sidecar = "side"\n')
    assert entry.model == str(folder / "models" / "dsr")
    assert entry.ranker == folder / "models" / "ranker"
    assert entry.sidecar == str(folder / "side")  # made by dsr ingest later: need not exist yet


def test_absolute_paths_urls_and_model_names_are_kept(folder):
    ranker = folder / "models" / "ranker"
    (entry,) = load(folder, f'[[index]]\nname = "p"\nmodel = "minilm"\nranker = "{ranker}"\n'
                            'sidecar = "https://sidecar.example:9500"\n')
    assert (entry.model, entry.ranker, entry.sidecar) == ("minilm", ranker, "https://sidecar.example:9500")


@pytest.mark.parametrize("model", ["none", ""])
def test_model_none_means_term_only(folder, model):
    (entry,) = load(folder, f'[[index]]\nname = "p"\nmodel = "{model}"\n')
    assert entry.model is None


@pytest.mark.parametrize("name, pattern", [("products", False), ("products-*", True), ("shop-?", True),
                                           ("products-live", False)])
def test_a_name_with_a_wildcard_is_a_pattern(name, pattern):
    assert ServedEntry(name).is_pattern is pattern


def test_a_name_is_trimmed(folder):
    assert load(folder, '[[index]]\nname = "  products "\n')[0].name == "products"


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("line, named", [
    ("hybrid = 1", "[hybrid] must be true or false"),
    ('rerank = "yes"', "[rerank] must be true or false"),
    ("k = -1", "[k] must be an integer from 0 to 1000"),
    ("k = 1001", "[k] must be an integer from 0 to 1000"),
    ("term_k = 2.5", "[term_k] must be an integer from 0 to 1000"),
    ("rerank_top = true", "[rerank_top] must be an integer from 0 to 1000"),
    ("k = 0\nterm_k = 0", "k and term_k cannot both be 0"),
    ("model = 3", "[model] must be a string"),
    ("ranker = 3", "[ranker] must be a path"),
    ('ranker = "no/such/dir"', "[ranker]"),
    ("sidecar = 3", "[sidecar] must be a directory or an http(s) URL"),
    ("text_queries = []", "[text_queries] must be a list of query forms"),
    ('text_queries = "match"', "[text_queries] must be a list of query forms"),
    ('text_queries = ["match", "regexp"]', "[text_queries] unknown query form(s) ['regexp']"),
    ('fusion = "rrf"', "[fusion] must be a table"),
    ('fusion = { mode = "max" }', "[fusion]"),
    ('fusion = { normalization = "log" }', "[fusion]"),
    ("fusion = { rrf_k = 0 }", "[fusion.rrf_k] must be an integer >= 1"),
    ("fusion = { k = 60 }", "[fusion] unknown key(s) ['k']"),
    ("fusion = { weights = { text = 1 } }", "[fusion.weights] must map term and/or vector"),
    ("fusion = { weights = { term = -1 } }", "[fusion.weights] must map term and/or vector"),
    ("fusion = { weights = { term = 0, vector = 0 } }", "[fusion.weights] at least one weight must be > 0"),
    ("rerank_depth = 10", "unknown key(s) ['rerank_depth']"),
])
def test_every_bad_value_is_an_error_naming_the_key_and_the_entry(folder, line, named):
    text = f'[[index]]\nname = "first"\n\n[[index]]\nname = "second"\n{line}\n'
    message = error(folder, text)
    assert "serve.toml: [[index]] entry 2:" in message
    assert named in message


def test_a_bad_value_in_yaml_names_the_key_and_the_entry_too(folder):
    message = error(folder, "index:\n  - name: p\n    k: lots\n", "serve.yaml")
    assert "[[index]] entry 1: [k] must be an integer" in message


def test_the_largest_depth_is_the_servers_max_k(folder):
    assert load(folder, '[[index]]\nname = "p"\nk = 300\n', max_k=300)[0].k == 300
    assert "[k] must be an integer from 0 to 200" in error(folder, '[[index]]\nname = "p"\nk = 300\n', max_k=200)


@pytest.mark.parametrize("line", ["k = 10", 'name = "a,b"', 'name = " "', "name = 7"])
def test_an_entry_needs_one_name(folder, line):
    message = error(folder, f'[[index]]\nname = "first"\n[[index]]\n{line}\n')
    assert "[[index]] entry 2: [name] must be one index, alias or pattern (no commas)" in message


def test_an_unknown_key_in_the_defaults_is_an_error_naming_it(folder):
    assert "unknown key(s) ['colour']" in error(folder, '[defaults]\ncolour = "red"\n[[index]]\nname = "p"\n')


def test_an_unknown_top_level_key_is_an_error_naming_it(folder):
    message = error(folder, '[server]\nport = 1\n[[index]]\nname = "p"\n')
    assert "unknown top-level key(s) ['server']" in message


@pytest.mark.parametrize("text, named", [
    ("", "at least one [[index]] entry is needed"),
    ("[defaults]\nk = 1\n", "at least one [[index]] entry is needed"),
    ('[index]\nname = "p"\n', "at least one [[index]] entry is needed"),  # a table, not a list of tables
    ('defaults = 3\n[[index]]\nname = "p"\n', "[defaults] must be a table"),
])
def test_a_configuration_without_entries_or_with_bad_tables_is_an_error(folder, text, named):
    assert named in error(folder, text)


def test_an_entry_that_is_not_a_table_is_an_error(folder):
    assert "[[index]] entry 2 must be a table" in error(folder, "index:\n  - name: p\n  - just-a-name\n",
                                                        "serve.yaml")


def test_a_yaml_file_that_is_not_a_mapping_is_an_error(folder):
    assert "the configuration must be a table" in error(folder, "- name: p\n", "serve.yaml")


def test_a_name_given_twice_is_an_error(folder):
    message = error(folder, '[[index]]\nname = "p"\n[[index]]\nname = "q"\n[[index]]\nname = "p"\n')
    assert "index name(s) ['p'] appear more than once" in message


@pytest.mark.parametrize("name, text, kind", [
    ("serve.toml", "[[index]\nname = 'p'\n", "not valid TOML"),
    ("serve.yaml", "index: [name: p\n", "not valid YAML"),
])
def test_a_file_that_does_not_parse_is_an_error_naming_the_format(folder, name, text, kind):
    assert kind in error(folder, text, name)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(UsageError, match=r"cannot read the serve configuration .*missing\.toml"):
        load_serve_config(tmp_path / "missing.toml")
