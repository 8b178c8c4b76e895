"""A deterministic synthetic catalog, query set and click simulator.

Tests and the demo need a world where the true relevance is known, so recall and NDCG can be measured
exactly, and where term matching is *not* enough: about 30% of the queries share no token with any
item they are looking for (synonyms like "sneakers" for running shoes, hypernyms like "footwear",
misspellings, genericised brand names like "kleenex" for facial tissue). Such queries can only be
served by a model that learned from clicks, which is what DSR is for.

The vocabulary is split in two: words that may appear in items (titles, descriptions, brands,
categories, attributes) and words that only ever appear in queries. A no-overlap query is built from
query-only words alone, so its no-overlap property holds against the whole catalog, not just against
its relevant items. The split is checked when the module is imported.

Everything is seeded; the same arguments give the same world and the same sessions.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from dsr.logs.records import Session
from dsr.text import tokenize

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

# top category -> query-only hypernyms
TOPS: dict[str, tuple[str, ...]] = {
    "Shoes": ("footwear",),
    "Kitchen": ("kitchenware", "housewares"),
    "Electronics": ("gadgets", "electronica"),
    "Home": ("furnishings",),
    "Bath": ("toiletries",),
    "Tools": ("hardware",),
    "Garden": ("yardwork", "landscaping"),
    "Apparel": ("clothing", "garments"),
}


@dataclass(frozen=True)
class Concept:
    """A product type: where it sits, what items call it, and what shoppers call it instead."""

    top: str
    mid: str
    head: str  # the words item titles use
    synonyms: tuple[str, ...]  # query-only phrases with the same meaning
    generic_brand: str | None = None  # a genericised trademark that is no brand in the catalog


CONCEPTS: tuple[Concept, ...] = (
    Concept("Shoes", "Athletic", "running shoe", ("sneakers", "trainers")),
    Concept("Shoes", "Outdoor", "hiking boot", ("trekkers", "backpacking footgear")),
    Concept("Shoes", "Casual", "sandal", ("flipflops", "thongs")),
    Concept("Shoes", "Formal", "oxford shoe", ("brogues", "wingtips")),
    Concept("Kitchen", "Cookware", "frying pan", ("skillet", "griddle")),
    Concept("Kitchen", "Cookware", "stock pot", ("saucepot", "stewing cauldron")),
    Concept("Kitchen", "Appliances", "coffee maker", ("brewer", "java percolator"), "keurig"),
    Concept("Kitchen", "Appliances", "slow cooker", ("stewpot",), "crockpot"),
    Concept("Kitchen", "Storage", "vacuum flask", ("thermal jug",), "thermos"),
    Concept("Kitchen", "Storage", "food storage bag", ("sandwich baggies",), "ziploc"),
    Concept("Electronics", "Audio", "wireless headphones", ("earbuds", "cans")),
    Concept("Electronics", "Computers", "laptop computer", ("notebook pc", "ultrabook")),
    Concept("Electronics", "Phones", "phone charger", ("charging brick",)),
    Concept("Electronics", "Video", "television", ("telly", "flatscreen")),
    Concept("Home", "Furniture", "sofa", ("couch", "settee")),
    Concept("Home", "Bedding", "pillow", ("cushion", "headrest")),
    Concept("Home", "Lighting", "table lamp", ("nightlight", "bedside luminaire")),
    Concept("Home", "Cleaning", "vacuum cleaner", ("sweeper", "dustbuster"), "hoover"),
    Concept("Bath", "Paper", "facial tissue", ("nose wipes",), "kleenex"),
    Concept("Bath", "Linens", "bath towel", ("terrycloth",)),
    Concept("Bath", "Personal Care", "cotton swab", ("ear cleaners",), "qtips"),
    Concept("Bath", "Personal Care", "lip balm", ("salve",), "chapstick"),
    Concept("Tools", "Power Tools", "cordless drill", ("screwgun",)),
    Concept("Tools", "Hand Tools", "hammer", ("mallet", "sledge")),
    Concept("Tools", "Fasteners", "hook and loop strap", ("fastening tape",), "velcro"),
    Concept("Tools", "Cleaning", "wet dry vacuum", ("workshop sucker",), "shopvac"),
    Concept("Garden", "Lawn", "string trimmer", ("strimmer", "edger"), "weedwacker"),
    Concept("Garden", "Lawn", "lawn mower", ("grasscutter",)),
    Concept("Garden", "Watering", "garden hose", ("hosepipe",)),
    Concept("Garden", "Outdoor Living", "hot tub", ("whirlpool spa",), "jacuzzi"),
    Concept("Apparel", "Tops", "polo shirt", ("collared tee",)),
    Concept("Apparel", "Outerwear", "rain jacket", ("anorak", "windbreaker")),
    Concept("Apparel", "Baby", "infant bodysuit", ("romper",), "onesie"),
    Concept("Apparel", "Accessories", "winter hat", ("beanie", "toque")),
)

# brand -> tier (0 budget, 1 mainstream, 2 premium); brands are shared by every top category
BRANDS: dict[str, int] = {
    "Acme": 0, "Valuline": 0, "Basix": 0, "Thrifton": 0,
    "Northpeak": 1, "Corvella": 1, "Brightway": 1, "Halden": 1, "Marisol": 1,
    "Luxora": 2, "Aurelian": 2, "Veritas": 2, "Kestrel": 2,
}
TIER_PRICE = (0.6, 1.0, 1.9)
COLORS = ("red", "blue", "black", "white", "green", "grey", "navy", "silver", "pink", "orange")
MATERIALS = ("steel", "aluminium", "leather", "canvas", "nylon", "plastic", "wool", "ceramic", "oak")
ADJECTIVES = ("durable", "lightweight", "compact", "classic", "modern", "sturdy", "versatile", "sleek")
ACCESSORIES = ("replacement part", "cover", "cleaning kit", "carry case", "spare strap")
QUERY_MODIFIERS = ("cheap", "best", "affordable", "deals", "buy", "discount", "quality", "top rated")

ITEM_TEMPLATE_WORDS = (
    "a from with construction series model edition for the and pack of set " "premium everyday use"
)


def _item_vocabulary() -> set[str]:
    words: set[str] = set(tokenize(ITEM_TEMPLATE_WORDS))
    for top in TOPS:
        words |= set(tokenize(top))
    for c in CONCEPTS:
        words |= set(tokenize(c.head)) | set(tokenize(c.mid)) | set(tokenize(c.top))
    for group in (BRANDS, COLORS, MATERIALS, ADJECTIVES, ACCESSORIES):
        for w in group:
            words |= set(tokenize(w))
    return words


def _query_only_phrases() -> list[str]:
    out = list(QUERY_MODIFIERS)
    for hypernyms in TOPS.values():
        out += hypernyms
    for c in CONCEPTS:
        out += list(c.synonyms)
        if c.generic_brand:
            out.append(c.generic_brand)
    return out


ITEM_VOCAB: frozenset[str] = frozenset(_item_vocabulary())


def _check_vocabulary() -> None:
    clash = {w for p in _query_only_phrases() for w in tokenize(p)} & ITEM_VOCAB
    if clash:  # a programming error in the tables above, caught at import
        raise AssertionError(f"query-only words also used in items: {sorted(clash)}")


_check_vocabulary()

# model codes appear in titles; they are letter+digits, so never a query-only word
_MODEL_LETTERS = "kmrtvxz"


def _misspell(word: str, rng: np.random.Generator) -> str:
    """A plausible typo of `word` that is no item word (a drop, a doubling or a swap)."""
    for _ in range(50):
        if len(word) < 3:
            cand = word + word[-1]
        else:
            i = int(rng.integers(1, len(word) - 1))
            op = int(rng.integers(0, 3))
            if op == 0:
                cand = word[:i] + word[i + 1 :]
            elif op == 1:
                cand = word[:i] + word[i] + word[i:]
            else:
                cand = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
        if cand != word and cand not in ITEM_VOCAB and tokenize(cand) == [cand]:
            return cand
    return word + "zq"  # cannot happen for the words above; still no item word


@functools.cache
def misspellings(concept: Concept, n: int = 2) -> tuple[str, ...]:
    """Fixed typo variants of a concept's head (every token misspelled), the same in every world."""
    rng = np.random.default_rng(sum(map(ord, concept.head)))
    out: list[str] = []
    for _ in range(n * 4):
        cand = " ".join(_misspell(w, rng) for w in tokenize(concept.head))
        if cand not in out:
            out.append(cand)
        if len(out) == n:
            break
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------------------

QUERY_KINDS_NO_OVERLAP = ("synonym", "hypernym", "misspelling", "brand_for_category")
QUERY_KINDS_OVERLAP = ("exact", "color", "brand")


@dataclass(frozen=True)
class SyntheticQuery:
    text: str
    intent: str  # what the shopper means, in catalog words, e.g. "running shoe" or "category Shoes"
    no_overlap: bool  # True when no relevant item shares a token with `text`
    relevant: Mapping[str, int]  # item id -> grade 1..3; absent means 0
    kind: str = "exact"  # one of QUERY_KINDS_OVERLAP + QUERY_KINDS_NO_OVERLAP


@dataclass(frozen=True)
class SyntheticUser:
    user_id: str
    segment: str
    preferred_brands: tuple[str, ...]
    price_level: int  # 0 budget, 1 mainstream, 2 premium (matches brand tiers)


SEGMENTS = {"budget": 0, "mainstream": 1, "premium": 2}


@dataclass(frozen=True)
class _Intent:
    kind: str
    concept: int | None = None
    top: str | None = None
    color: str | None = None
    brand: str | None = None


@dataclass
class SyntheticWorld:
    catalog: list[dict]
    queries: list[SyntheticQuery]
    users: list[SyntheticUser]
    seed: int = 0
    # columnar copies of the catalog for fast grading
    _concept: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int32))
    _accessory: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, bool))
    _color: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int32))
    _brand: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int32))
    _ids: list[str] = field(repr=False, default_factory=list)
    _index: dict[str, int] = field(repr=False, default_factory=dict)
    _by_text: dict[str, SyntheticQuery] = field(repr=False, default_factory=dict)
    _users_by_id: dict[str, SyntheticUser] = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = [row["id"] for row in self.catalog]
        self._index = {iid: i for i, iid in enumerate(self._ids)}
        self._by_text = {q.text: q for q in self.queries}
        self._users_by_id = {u.user_id: u for u in self.users}

    @property
    def items_by_id(self) -> dict[str, dict]:
        return {row["id"]: row for row in self.catalog}

    def query(self, text: str) -> SyntheticQuery:
        """The world's query with this text, or a new one graded by parsing the text."""
        q = self._by_text.get(text)
        if q is None:
            intent = parse_intent(text)
            rel = self._grades(intent) if intent is not None else {}
            q = SyntheticQuery(text, _describe(intent), _no_overlap(text, rel, self), rel,
                               intent.kind if intent else "unknown")
            self._by_text[text] = q
        return q

    def grade(self, query_text: str, item_id: str) -> int:
        """True relevance 0..3 of an item for a query."""
        return int(self.query(query_text).relevant.get(item_id, 0))

    def personal_grade(self, query_text: str, item_id: str, user_id: str) -> float:
        """Relevance plus the user's planted brand and price preference (only for relevant items)."""
        g = self.grade(query_text, item_id)
        user = self._users_by_id.get(user_id)
        if g == 0 or user is None:
            return float(g)
        item = self.catalog[self._index[item_id]]
        bonus = 0.6 if item["brand"] in user.preferred_brands else 0.0
        bonus += 0.5 * (1.0 - abs(BRANDS[item["brand"]] - user.price_level) / 2.0)
        return float(g) + bonus

    def _grades(self, intent: _Intent) -> dict[str, int]:
        n = len(self.catalog)
        grades = np.zeros(n, np.int8)
        if intent.top is not None:
            top_concepts = [i for i, c in enumerate(CONCEPTS) if c.top == intent.top]
            grades[np.isin(self._concept, top_concepts) & ~self._accessory] = 2
        elif intent.concept is not None:
            same = self._concept == intent.concept
            main = same & ~self._accessory
            if intent.color is not None or intent.brand is not None:
                attr = np.ones(n, bool)
                if intent.color is not None:
                    attr &= self._color == COLORS.index(intent.color)
                if intent.brand is not None:
                    attr &= self._brand == list(BRANDS).index(intent.brand)
                grades[main & attr] = 3
                grades[main & ~attr] = 2
                grades[same & self._accessory & attr] = 1
            else:
                grades[main] = 3
                grades[same & self._accessory] = 1
        idx = np.flatnonzero(grades).tolist()
        ids = self._ids
        return dict(zip([ids[i] for i in idx], grades[idx].tolist(), strict=True))


def _describe(intent: _Intent | None) -> str:
    if intent is None:
        return "unknown"
    if intent.top is not None:
        return f"category {intent.top}"
    head = CONCEPTS[intent.concept].head if intent.concept is not None else "?"
    parts = [p for p in (intent.brand, intent.color) if p]
    return " ".join([*parts, head])


_GENERATED_TOKEN = re.compile(rf"^(p\d+|[{_MODEL_LETTERS}]\d+)$")  # item ids and model codes


def _no_overlap(text: str, relevant: Mapping[str, int], world: SyntheticWorld) -> bool:
    q = set(tokenize(text))
    if not q & ITEM_VOCAB and not any(_GENERATED_TOKEN.match(t) for t in q):
        return True  # items are written only with ITEM_VOCAB words, ids and model codes
    return all(not q & item_tokens(world.catalog[world._index[item_id]]) for item_id in relevant)


def item_tokens(item: Mapping) -> set[str]:
    """Every token of every text field of an item (what any term matcher could match)."""
    parts = [str(item.get(f) or "") for f in ("id", "title", "description", "brand", "category")]
    parts += [str(v) for v in (item.get("attributes") or {}).values()]
    return set(tokenize(" ".join(parts)))


# phrase (token tuple) -> partial intent; built once
def _phrase_table() -> dict[tuple[str, ...], tuple[str, int | None, str | None]]:
    table: dict[tuple[str, ...], tuple[str, int | None, str | None]] = {}
    for top, hypernyms in TOPS.items():
        for h in hypernyms:
            table[tuple(tokenize(h))] = ("hypernym", None, top)
    for i, c in enumerate(CONCEPTS):
        table[tuple(tokenize(c.head))] = ("exact", i, None)
        for s in c.synonyms:
            table[tuple(tokenize(s))] = ("synonym", i, None)
        for m in misspellings(c):
            table[tuple(tokenize(m))] = ("misspelling", i, None)
        if c.generic_brand:
            table[tuple(tokenize(c.generic_brand))] = ("brand_for_category", i, None)
    return table


_PHRASES = _phrase_table()
_MAX_PHRASE = max(len(p) for p in _PHRASES)


def parse_intent(text: str) -> _Intent | None:
    """Read what a query means (longest known phrase wins), or None if it names no product."""
    toks = tokenize(text)
    found: tuple[str, int | None, str | None] | None = None
    best_len = 0
    for i in range(len(toks)):
        for n in range(min(_MAX_PHRASE, len(toks) - i), 0, -1):
            hit = _PHRASES.get(tuple(toks[i : i + n]))
            if hit is not None and n > best_len:
                found, best_len = hit, n
                break
    if found is None:
        return None
    kind, concept, top = found
    color = next((t for t in toks if t in COLORS), None)
    brand = next((b for b in BRANDS if b.lower() in toks), None)
    if kind == "exact" and (color or brand):
        kind = "color" if color else "brand"
    return _Intent(kind, concept, top, color, brand)


def _make_catalog(n_items: int, rng: np.random.Generator) -> tuple[list[dict], dict[str, np.ndarray]]:
    n_c = len(CONCEPTS)
    brands = list(BRANDS)
    concept = rng.integers(0, n_c, n_items).astype(np.int32)
    concept[: min(n_items, n_c)] = np.arange(min(n_items, n_c))  # every concept present
    accessory = rng.random(n_items) < 0.2
    color = rng.integers(0, len(COLORS), n_items).astype(np.int32)
    brand = rng.integers(0, len(brands), n_items).astype(np.int32)
    material = rng.integers(0, len(MATERIALS), n_items)
    adjective = rng.integers(0, len(ADJECTIVES), n_items)
    acc_kind = rng.integers(0, len(ACCESSORIES), n_items)
    model_no = rng.integers(100, 1000, n_items)
    model_letter = rng.integers(0, len(_MODEL_LETTERS), n_items)
    base_price = np.exp(rng.uniform(math.log(8), math.log(600), n_c))
    noise = np.exp(rng.normal(0.0, 0.25, n_items))
    popularity = np.round(rng.pareto(1.5, n_items), 4).tolist()
    ctr = np.round(rng.beta(2, 30, n_items), 4).tolist()
    tiers = np.array([BRANDS[b] for b in brands])
    tier_factor = np.array(TIER_PRICE)[tiers[brand]]
    acc_factor = np.where(accessory, 0.15, 1.0)
    price = np.round(base_price[concept] * tier_factor * acc_factor * noise, 2).tolist()

    heads = [c.head.title() for c in CONCEPTS]
    cats = [f"{c.top} > {c.mid} > {c.head.title()}" for c in CONCEPTS]
    catalog: list[dict] = []
    for i in range(n_items):
        c = int(concept[i])
        b = brands[brand[i]]
        col = COLORS[color[i]]
        mat = MATERIALS[material[i]]
        model = f"{_MODEL_LETTERS[model_letter[i]]}{model_no[i]}"
        if accessory[i]:
            acc = ACCESSORIES[acc_kind[i]]
            title = f"{b} {heads[c]} {acc.title()} {col.title()} {model}"
            desc = f"A {ADJECTIVES[adjective[i]]} {acc} for the {CONCEPTS[c].head}, {mat} construction."
        else:
            title = f"{b} {col.title()} {heads[c]} {model}"
            desc = f"A {ADJECTIVES[adjective[i]]} {CONCEPTS[c].head} from {b}, {mat} construction."
        catalog.append({
            "id": f"p{i:06d}",
            "title": title,
            "description": desc,
            "brand": b,
            "category": cats[c],
            "price": price[i],
            "attributes": {"color": col, "material": mat},
            "popularity": popularity[i],
            "ctr": ctr[i],
        })
    cols = {"concept": concept, "accessory": accessory, "color": color, "brand": brand}
    return catalog, cols


def _candidate_query(rng: np.random.Generator, no_overlap: bool) -> str:
    if no_overlap:
        kind = QUERY_KINDS_NO_OVERLAP[int(rng.integers(0, len(QUERY_KINDS_NO_OVERLAP)))]
        pool = [c for c in CONCEPTS if c.generic_brand] if kind == "brand_for_category" else CONCEPTS
        c = pool[int(rng.integers(0, len(pool)))]
        if kind == "synonym":
            core = c.synonyms[int(rng.integers(0, len(c.synonyms)))]
        elif kind == "hypernym":
            hyps = TOPS[c.top]
            core = hyps[int(rng.integers(0, len(hyps)))]
        elif kind == "misspelling":
            ms = misspellings(c)
            core = ms[int(rng.integers(0, len(ms)))]
        else:
            core = str(c.generic_brand)
    else:
        c = CONCEPTS[int(rng.integers(0, len(CONCEPTS)))]
        r = rng.random()
        core = c.head
        if r < 0.3:
            core = f"{COLORS[int(rng.integers(0, len(COLORS)))]} {core}"
        elif r < 0.55:
            core = f"{list(BRANDS)[int(rng.integers(0, len(BRANDS)))].lower()} {core}"
    if rng.random() < 0.3:
        core = f"{QUERY_MODIFIERS[int(rng.integers(0, len(QUERY_MODIFIERS)))]} {core}"
    return core


def _make_users(n_users: int, rng: np.random.Generator) -> list[SyntheticUser]:
    users = []
    seg_names = list(SEGMENTS)
    for u in range(n_users):
        seg = seg_names[u % len(seg_names)]
        level = SEGMENTS[seg]
        pool = [b for b, t in BRANDS.items() if t == level]
        k = 2 if len(pool) > 2 else 1
        pick = rng.choice(len(pool), size=k, replace=False)
        users.append(SyntheticUser(f"u{u:05d}", seg, tuple(pool[int(j)] for j in sorted(pick)), level))
    return users


def make_world(
    n_items: int = 2000, n_queries: int = 300, n_users: int = 200, seed: int = 0
) -> SyntheticWorld:
    """Build a seeded world: catalog rows, graded queries (~30% no-overlap) and users."""
    if n_items < 1 or n_queries < 0 or n_users < 1:
        raise ValueError("make_world needs n_items >= 1, n_queries >= 0, n_users >= 1")
    rng = np.random.default_rng(seed)
    catalog, cols = _make_catalog(n_items, rng)
    users = _make_users(n_users, rng)
    world = SyntheticWorld(catalog=catalog, queries=[], users=users, seed=seed,
                           _concept=cols["concept"], _accessory=cols["accessory"],
                           _color=cols["color"], _brand=cols["brand"])
    queries: list[SyntheticQuery] = []
    seen: set[str] = set()
    slot_attempts = 0
    while len(queries) < n_queries and slot_attempts < 1000:
        slot_attempts += 1
        # 3 of every 10 queries are no-overlap; if those run out (huge n_queries), fall back
        want_no = len(queries) % 10 in (1, 4, 7) and slot_attempts < 500
        text = _candidate_query(rng, want_no)
        if text in seen:
            continue
        intent = parse_intent(text)
        assert intent is not None
        rel = world._grades(intent)
        if not rel:
            continue
        no = _no_overlap(text, rel, world)
        if want_no and not no:
            continue
        seen.add(text)
        slot_attempts = 0
        queries.append(SyntheticQuery(text, _describe(intent), no, MappingProxyType(rel), intent.kind))
    world.queries = queries
    world._by_text = {q.text: q for q in queries}
    return world


# --------------------------------------------------------------------------------------------------
# Click simulator
# --------------------------------------------------------------------------------------------------

BASE_TS = 1_700_000_000.0


def _production_ranking(world: SyntheticWorld, q: SyntheticQuery, rng: np.random.Generator,
                        page_size: int, cache: dict[str, tuple[list[str], np.ndarray]]) -> list[str]:
    """A noisy legacy ranking: some relevant items (better ones more likely), padded with
    irrelevant ones, ordered by relevance plus noise."""
    if q.text not in cache:
        ids = list(q.relevant)
        w = np.array([q.relevant[i] for i in ids], float) ** 2
        cache[q.text] = (ids, w / w.sum() if len(ids) else w)
    rel_ids, p = cache[q.text]
    n_cat = len(world.catalog)
    chosen: dict[str, float] = {}
    if rel_ids:
        k_rel = min(len(rel_ids), int(rng.integers(max(1, page_size // 4), max(2, (3 * page_size) // 4) + 1)))
        pick = rng.choice(len(rel_ids), size=k_rel, replace=False, p=p)
        for j in pick:
            chosen[rel_ids[int(j)]] = float(q.relevant[rel_ids[int(j)]])
    tries = 0
    while len(chosen) < min(page_size, n_cat) and tries < page_size * 20:
        tries += 1
        iid = world.catalog[int(rng.integers(0, n_cat))]["id"]
        if iid not in chosen and iid not in q.relevant:
            chosen[iid] = 0.0
    ids = list(chosen)
    scores = np.array([chosen[i] for i in ids]) + rng.normal(0.0, 1.2, len(ids))
    return [ids[int(j)] for j in np.argsort(-scores)][:page_size]


def examine_probability(position: int) -> float:
    """Position bias: the chance a shopper looks at the result at 0-based `position`."""
    return 1.0 / (1.0 + position) ** 0.8


def click_probability(personal_grade: float) -> float:
    """Attractiveness of an examined result, from its personal relevance (0 .. ~4.1)."""
    return 0.03 + 0.9 * min(personal_grade, 4.0) / 4.0


def simulate_sessions(
    world: SyntheticWorld,
    n_sessions: int,
    *,
    seed: int = 0,
    page_size: int = 10,
    first_stage: Callable[[str], list[str]] | None = None,
) -> list[Session]:
    """Sessions in time order: a user issues a query, sees a page, clicks with position bias x
    personal relevance; some clicks go to the cart and some carts are ordered."""
    if not world.queries:
        raise ValueError("the world has no queries to simulate")
    rng = np.random.default_rng([seed, world.seed, 7919])
    # head queries are asked more often (Zipf-like), as in real logs
    weights = 1.0 / np.arange(1, len(world.queries) + 1) ** 0.6
    order = rng.permutation(len(world.queries))
    probs = np.empty(len(world.queries))
    probs[order] = weights / weights.sum()
    q_idx = rng.choice(len(world.queries), size=n_sessions, p=probs)
    u_idx = rng.integers(0, len(world.users), n_sessions)
    gaps = rng.exponential(90.0, n_sessions)
    ts = BASE_TS + np.cumsum(gaps)
    sessions: list[Session] = []
    cache: dict[str, tuple[list[str], np.ndarray]] = {}
    for s in range(n_sessions):
        q = world.queries[int(q_idx[s])]
        user = world.users[int(u_idx[s])]
        if first_stage is not None:
            page = [str(i) for i in first_stage(q.text)][:page_size]
        else:
            page = _production_ranking(world, q, rng, page_size, cache)
        clicks: list[str] = []
        carts: list[str] = []
        orders: list[str] = []
        for pos, iid in enumerate(page):
            if iid not in world._index:
                continue
            if rng.random() >= examine_probability(pos):
                continue
            pg = world.personal_grade(q.text, iid, user.user_id)
            if rng.random() < click_probability(pg):
                clicks.append(iid)
                if rng.random() < 0.35 * min(pg, 4.0) / 4.0:
                    carts.append(iid)
                    if rng.random() < 0.6:
                        orders.append(iid)
        sessions.append(Session(
            session_id=f"s{s:07d}",
            query=q.text,
            user_id=user.user_id,
            ts=float(round(ts[s], 3)),
            impressions=tuple(page),
            clicks=tuple(clicks),
            add_to_carts=tuple(carts),
            orders=tuple(orders),
        ))
    return sessions


def recent_clicks(sessions: Sequence[Session], user_id: str, before_ts: float, limit: int = 10) -> list[str]:
    """The user's last `limit` clicked items before `before_ts`, most recent first (DPSR input)."""
    out: list[str] = []
    for s in sorted((s for s in sessions if s.user_id == user_id and (s.ts or 0.0) < before_ts),
                    key=lambda s: s.ts or 0.0, reverse=True):
        out.extend(reversed(s.clicks))
        if len(out) >= limit:
            break
    return out[:limit]
