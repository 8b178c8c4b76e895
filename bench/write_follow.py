"""What `dsr serve` adds to a document write, and how far the sidecar lags the writes it relays.

Per engine, a synthetic catalog (`dsr.logs.synthetic.make_world`, 5k items by default) is written with
`dsr ingest --model hashing --no-embedding-field` and `dsr serve` is started on it as a child process
(the real command, write-through on). Two writers then run the same open-loop schedule at the same
time, each at `--rate` single-document writes per second for `--seconds`: one through dsr, one straight
to the cluster (the baseline, on the other half of the ids, its send times offset by half a period).
Every tenth write is `DELETE /{index}/_doc/{id}`, the rest `PUT /{index}/_doc/{id}` of the item with a
changed title. Send times are fixed in advance and each latency is measured from the scheduled time,
so a slow server cannot hide behind a slowed writer (a pool of senders per writer keeps it open-loop
while answers take longer than the period).

Sync lag, per write through dsr: from its acknowledgement (the writer got the answer) to the first
`GET /_dsr/stats` poll (every `--poll-ms`) whose `applied` count covers it. The write-through applies
the backlog in journal order and counts one per acknowledged id, and the searcher takes up each
applied batch before the next, so the k-th acknowledged write is in the sidecar once `applied` has
grown by k; the figure is an upper bound, too high by at most one poll interval plus a stats round
trip. A check at the end searches vector-only (`"term_k": 0`) for the last retitled items and
counts how many are found.

Target: dsr adds at most 2 ms to a write's p50.

    .venv/bin/python bench/write_follow.py            # 5k items, 30 s of writes per engine
    .venv/bin/python bench/write_follow.py --quick    # 3k items, 10 s

Engines: $DSR_TEST_ES_URL / $DSR_TEST_OS_URL when set, else local nodes are started and stopped.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from common import log
from dsr.engines import engine_urls, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DSR = str(Path(sys.executable).with_name("dsr"))
MODEL = "hashing"
SENDERS = 8  # per writer: enough for the schedule to hold while an answer takes up to 8 periods
DELETE_EVERY = 10


@dataclass(frozen=True)
class Write:
    """One scheduled write and what became of it (perf_counter seconds)."""

    number: int
    scheduled: float
    sent: float
    acked: float
    status: int


# ------------------------------------------------------------------------------------------ set-up

def ingest(engine_url: str, data_dir: Path, index: str, catalog: list[dict[str, Any]]) -> float:
    path = data_dir.parent / f"{index}.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in catalog))
    t0 = time.perf_counter()
    subprocess.run([DSR, "--engine", engine_url, "--data-dir", str(data_dir), "ingest", str(path), "--index", index,
                    "--model", MODEL, "--no-embedding-field", "--device", "cpu", "-q"], check=True)
    return time.perf_counter() - t0


def start_serve(engine_url: str, data_dir: Path, index: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([DSR, "--engine", engine_url, "--data-dir", str(data_dir), "serve", "--index", index,
                             "--model", MODEL, "--port", str(port)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dsr serve exited with {proc.returncode}")
        try:
            stats = httpx.get(f"http://127.0.0.1:{port}/_dsr/stats", timeout=2).json()
            if not stats["write_through"]:
                proc.terminate()
                raise SystemExit("dsr serve runs without write-through")
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("dsr serve did not start")


# ---------------------------------------------------------------------------------------- measuring

def request_for(k: int, ids: list[str], items: dict[str, dict[str, Any]], index: str) -> tuple[str, str, Any]:
    """The k-th write of a writer: a delete every DELETE_EVERY, else the item retitled."""
    item_id = ids[k % len(ids)]
    if k % DELETE_EVERY == DELETE_EVERY - 1:
        return "DELETE", f"/{index}/_doc/{item_id}", None
    item = items[item_id]
    doc = {key: v for key, v in item.items() if key != "id"}
    doc["title"] = f"{item['title']} mark{k}"
    return "PUT", f"/{index}/_doc/{item_id}", doc


def run_writer(base_url: str, index: str, ids: list[str], items: dict[str, dict[str, Any]], schedule: np.ndarray,
               out: list[Write]) -> None:
    """Send write k at schedule[k] from SENDERS threads; each appends its `Write`s to `out`."""
    lock = threading.Lock()

    def sender(j: int) -> None:
        done = []
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for k in range(j, len(schedule), SENDERS):
                wait = schedule[k] - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                method, path, doc = request_for(k, ids, items, index)
                sent = time.perf_counter()
                r = client.request(method, path, json=doc)
                done.append(Write(k, float(schedule[k]), sent, time.perf_counter(), r.status_code))
        with lock:
            out.extend(done)

    threads = [threading.Thread(target=sender, args=(j,), daemon=True) for j in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def poll_stats(url: str, index: str, stop: threading.Event, every_s: float, out: list[tuple[float, int, int]]) -> None:
    """(time the answer came, applied, backlog) of `GET /_dsr/stats` every `every_s` until `stop`."""
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            entry = client.get(f"{url}/_dsr/stats").json()["indices"][index]
            out.append((time.perf_counter(), int(entry["applied"]), int(entry["backlog"])))
            stop.wait(every_s)


def applied_now(url: str, index: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_dsr/stats", timeout=10).json()["indices"][index]


def wait_drained(url: str, index: str, expected: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        entry = applied_now(url, index)
        if (entry["backlog"] == 0 and entry["applied"] >= expected) or time.monotonic() > deadline:
            return entry
        time.sleep(0.05)


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.array(values)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "max_ms": round(float(a.max()), 3), "n": len(a)}


def latency(writes: list[Write]) -> dict[str, Any]:
    ok = [w for w in writes if 200 <= w.status < 300 or w.status == 404]
    return {**percentiles([(w.acked - w.scheduled) * 1000 for w in ok]),
            "writer_late_p99_ms": round(float(np.percentile([(w.sent - w.scheduled) * 1000 for w in writes], 99)), 3),
            "errors": len(writes) - len(ok)}


def sync_lags(writes: list[Write], polls: list[tuple[float, int, int]], applied_before: int) -> list[float]:
    """Per acknowledged write, ms from its answer to the first poll whose applied count covers it."""
    acked = sorted(w.acked for w in writes if 200 <= w.status < 300 or w.status == 404)
    times = np.array([p[0] for p in polls])
    applied = np.array([p[1] for p in polls])
    covered = np.maximum.accumulate(applied) - applied_before
    lags = []
    for rank, at in enumerate(acked, start=1):
        later = np.nonzero((covered >= rank) & (times >= at))[0]
        if len(later):
            lags.append((times[later[0]] - at) * 1000)
    return lags


def visible(url: str, index: str, writes: list[Write], ids: list[str], items: dict[str, dict[str, Any]],
            n: int = 5) -> int:
    """How many of the last `n` retitled items a vector-only search for the new title finds."""
    last: dict[str, tuple[int, str]] = {}
    for w in sorted(writes, key=lambda w: w.number):
        method, _, doc = request_for(w.number, ids, items, index)
        item_id = ids[w.number % len(ids)]
        if method == "PUT":
            last[item_id] = (w.number, doc["title"])
        else:
            last.pop(item_id, None)
    found = 0
    for item_id, (_, title) in sorted(last.items(), key=lambda kv: kv[1][0])[-n:]:
        body = {"size": 10, "ext": {"dsr": {"text": title, "k": 10, "term_k": 0, "rerank": False}}}
        hits = httpx.post(f"{url}/{index}/_search", json=body, timeout=30).json()["hits"]["hits"]
        found += item_id in [h["_id"] for h in hits]
    return found


def measure(engine_url: str, proxy_url: str, index: str, catalog: list[dict[str, Any]], args: argparse.Namespace,
            ) -> dict[str, Any]:
    items = {item["id"]: item for item in catalog}
    through_ids = [item["id"] for item in catalog[0::2]]
    direct_ids = [item["id"] for item in catalog[1::2]]
    n = int(args.rate * args.seconds)
    # warm-up: connections, the write-through's first batch, the cluster's caches
    with httpx.Client(timeout=30) as client:
        for k in range(50):
            for url, ids in ((proxy_url, through_ids), (engine_url, direct_ids)):
                method, path, doc = request_for(n + k, ids, items, index)
                client.request(method, url + path, json=doc)
    before = wait_drained(proxy_url, index, 50, timeout=60)["applied"]
    start = time.perf_counter() + 0.5
    schedule = start + np.arange(n) / args.rate
    through: list[Write] = []
    direct: list[Write] = []
    polls: list[tuple[float, int, int]] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_stats, args=(proxy_url, index, stop, args.poll_ms / 1000, polls), daemon=True)
    poller.start()
    writers = [threading.Thread(target=run_writer, args=(proxy_url, index, through_ids, items, schedule, through)),
               threading.Thread(target=run_writer, args=(engine_url, index, direct_ids, items,
                                                         schedule + 0.5 / args.rate, direct))]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    acked = sum(1 for w in through if 200 <= w.status < 300 or w.status == 404)
    final = wait_drained(proxy_url, index, before + acked, timeout=60)
    time.sleep(3 * args.poll_ms / 1000)  # the poller's own look at the drained backlog
    stop.set()
    poller.join()
    lags = sync_lags(through, polls, before)
    out: dict[str, Any] = {"direct": latency(direct), "through_dsr": latency(through)}
    overhead = out["through_dsr"]["p50_ms"] - out["direct"]["p50_ms"]
    out["overhead_p50_ms"] = round(overhead, 3)
    out["overhead_p99_ms"] = round(out["through_dsr"]["p99_ms"] - out["direct"]["p99_ms"], 3)
    out["sync_lag"] = {**percentiles(lags), "not_covered": acked - len(lags)} if lags else {"n": 0}
    out["stats_at_end"] = {k: final[k] for k in ("backlog", "applied", "failed", "last_error")}
    out["applied_during_run"] = final["applied"] - before
    out["vector_only_found_last_5"] = visible(proxy_url, index, through, through_ids, items)
    out["targets_met"] = {"overhead_p50_le_2ms": overhead <= 2.0}
    return out


# --------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3k items and 10 s of writes per engine")
    parser.add_argument("--items", type=int, default=None, help="catalog size (default 5000; quick 3000)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of writes (default 30; quick 10)")
    parser.add_argument("--rate", type=float, default=200.0, help="writes per second, per writer")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="interval of the /_dsr/stats poll")
    parser.add_argument("--engines", default="elasticsearch,opensearch")
    args = parser.parse_args()
    n_items = args.items or (3000 if args.quick else 5000)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    from dsr.logs.synthetic import make_world

    load_start = os.getloadavg()[0]
    catalog = make_world(n_items=n_items, n_queries=10, seed=7).catalog
    results: dict[str, Any] = {}
    with engine_urls(engines, log=log) as running, tempfile.TemporaryDirectory(prefix="dsr-bench-") as tmp:
        for name, url in running.urls.items():
            index = f"dsr-bench-follow-{uuid.uuid4().hex[:8]}"
            data_dir = Path(tmp) / name / "data"
            data_dir.mkdir(parents=True)
            proc = None
            try:
                secs = ingest(url, data_dir, index, catalog)
                log(f"{name}: ingested {n_items} items ({MODEL}) in {secs:.1f}s")
                port = free_port()
                proc = start_serve(url, data_dir, index, port)
                results[name] = measure(url, f"http://127.0.0.1:{port}", index, catalog, args)
                r = results[name]
                log(f"{name}: write p50/p99 ms direct {r['direct']['p50_ms']}/{r['direct']['p99_ms']}, through dsr "
                    f"{r['through_dsr']['p50_ms']}/{r['through_dsr']['p99_ms']} (+{r['overhead_p50_ms']} ms p50: "
                    f"target <= 2 ms {'met' if r['targets_met']['overhead_p50_le_2ms'] else 'NOT met'}); sync lag "
                    f"p50/p99 ms {r['sync_lag'].get('p50_ms')}/{r['sync_lag'].get('p99_ms')}; "
                    f"vector-only search found {r['vector_only_found_last_5']}/5 of the last retitled")
            finally:
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                httpx.delete(f"{url}/{index}", timeout=60)
    summary = {"bench": "write_follow", "items": n_items, "rate_per_s": args.rate, "seconds": args.seconds,
               "senders_per_writer": SENDERS, "deletes": f"1 in {DELETE_EVERY}", "encoder": MODEL,
               "latency": "from the scheduled send time to the answer (open loop)",
               "sync_lag_method": f"ack -> first GET /_dsr/stats (every {args.poll_ms:g} ms) whose applied count "
                                  "covers the write, in ack order (upper bound)",
               "cpu_count": os.cpu_count(),  # the machine is shared: a high load average skews every figure
               "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
               **results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
