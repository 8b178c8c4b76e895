// A shop front end's search API, as Searchkit (@searchkit/api) builds it, pointed at a search URL.
//
//   node tests/js/searchkit_search.mjs URL INDEX < batches.json
//
// stdin holds named batches of InstantSearch requests: {"name": [{"params": {...}, "sort": "price_desc"}, ...]}.
// Each request searches INDEX, or the sort replica INDEX_<sort> (Searchkit reads the sort option from the
// index name's suffix). Every batch is one `client.handleRequest(...)`, as an InstantSearch page makes it.
// stdout is one JSON object: per batch, the InstantSearch results and the HTTP exchanges Searchkit made
// (method, URL, headers, the msearch lines it sent; status and headers of the answer), so a caller can
// check both what a shop's search page shows and exactly what it sent.

import createClient from "@searchkit/api"; // the package's default export: a new `Client`

const [url, index] = process.argv.slice(2);
if (!url || !index) {
  console.error("usage: node searchkit_search.mjs URL INDEX < batches.json");
  process.exit(2);
}

/** The search settings of a small shoe shop: what is searched, shown, highlighted, faceted and sorted by. */
const searchSettings = {
  search_attributes: [{ field: "title", weight: 3 }, "description"],
  result_attributes: ["title", "description", "brand", "category", "price"],
  highlight_attributes: ["title"],
  facet_attributes: [
    { attribute: "brand", field: "brand", type: "string" },
    { attribute: "category", field: "category", type: "string" },
    { attribute: "price", field: "price", type: "numeric" },
  ],
  sorting: {
    _price_desc: { field: "price", order: "desc" },
    _brand_price: [{ field: "brand", order: "asc" }, { field: "price", order: "asc" }],
  },
};

const exchanges = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (target, init = {}) => {
  const body = typeof init.body === "string" ? init.body : "";
  const sent = {
    method: init.method ?? "GET",
    url: String(target),
    headers: init.headers ?? {},
    lines: body.split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line)),
  };
  const response = await realFetch(target, init);
  exchanges.push({ sent, answer: { status: response.status, headers: Object.fromEntries(response.headers) } });
  return response;
};

const readStdin = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
};

const client = createClient({ connection: { host: url.replace(/\/$/, "") }, search_settings: searchSettings });
const batches = await readStdin();
const out = {};
for (const [name, requests] of Object.entries(batches)) {
  const before = exchanges.length;
  const instantsearch = requests.map(({ params = {}, sort }) => ({
    indexName: sort ? `${index}_${sort}` : index,
    params,
  }));
  try {
    const { results } = await client.handleRequest(instantsearch);
    out[name] = { results, exchanges: exchanges.slice(before) };
  } catch (error) {
    out[name] = { error: String(error?.message ?? error), exchanges: exchanges.slice(before) };
  }
}
process.stdout.write(JSON.stringify(out) + "\n");
