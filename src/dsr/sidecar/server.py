"""`dsr sidecar serve`: the vector index over HTTP for the out-of-process deployment.

Endpoints: `POST /knn` `{"vectors": [[...], ...], "k": 10}` -> `{"scores": [[...]], "ids": [[...]]}`
(each row only as long as its hits: JSON has no -inf); `POST /similarity` `{"vector": [...], "ids": [...]}`
-> `{"scores": {id: query · item}}` for the ids the sidecar holds (what term-only candidates need);
`GET /health`, `GET /stats`, and `POST /reload` (re-read the directory after an ingest) when the app
was built from a directory.
FAISS releases the GIL, so searches run in the thread pool and do not block the event loop.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dsr.errors import VectorIndexError
from dsr.sidecar.base import VectorIndex

MAX_BATCH = 4096
MAX_K = 10_000


def create_app(index: VectorIndex, *, directory: Path | None = None, device: str = "auto") -> Starlette:
    """An ASGI app serving `index`; with `directory`, `POST /reload` swaps in the latest saved state."""
    state: dict[str, Any] = {"index": index}
    reload_lock = threading.Lock()

    async def knn(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            vectors = np.asarray(body["vectors"], dtype=np.float32)
            k = int(body.get("k", 10))
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
        current = state["index"]
        if vectors.ndim != 2 or vectors.shape[1] != current.dim:
            return JSONResponse(
                {"error": f"vectors must have shape (n, {current.dim}), got {list(vectors.shape)}"},
                status_code=400,
            )
        if not 0 < k <= MAX_K or len(vectors) > MAX_BATCH:
            message = f"k must be in 1..{MAX_K}, batch at most {MAX_BATCH}"
            return JSONResponse({"error": message}, status_code=400)
        try:
            scores, ids = await run_in_threadpool(current.search, vectors, k)
        except VectorIndexError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        rows = [[float(s) for s in scores[i, : len(row)]] for i, row in enumerate(ids)]
        return JSONResponse({"scores": rows, "ids": ids})

    async def similarity(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            vector = np.asarray(body["vector"], dtype=np.float32)
            ids = body["ids"]
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
        current = state["index"]
        if vector.shape != (current.dim,):
            return JSONResponse({"error": f"vector must have shape ({current.dim},), got {list(vector.shape)}"},
                                status_code=400)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_K:
            return JSONResponse({"error": f"ids must be a list of at most {MAX_K} strings"}, status_code=400)
        try:
            scores = await run_in_threadpool(current.similarities, vector, ids)
        except VectorIndexError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse({"scores": scores})

    async def health(request: Request) -> JSONResponse:
        current = state["index"]
        return JSONResponse({"status": "ok", "count": len(current), "dim": current.dim})

    async def stats(request: Request) -> JSONResponse:
        current = state["index"]
        info = current.stats() if hasattr(current, "stats") else {"count": len(current), "dim": current.dim}
        return JSONResponse(info)

    async def reload(request: Request) -> JSONResponse:
        if directory is None:
            return JSONResponse({"error": "this sidecar was not started from a directory"}, status_code=400)

        def _load() -> VectorIndex:
            from dsr.sidecar.faiss_index import FaissIndex

            with reload_lock:
                return FaissIndex.load(directory, device=device)

        try:
            state["index"] = await run_in_threadpool(_load)
        except VectorIndexError as e:
            return JSONResponse({"error": str(e)}, status_code=500)
        return JSONResponse({"status": "reloaded", "count": len(state["index"])})

    routes = [
        Route("/knn", knn, methods=["POST"]),
        Route("/similarity", similarity, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/reload", reload, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(directory: Path, *, host: str = "127.0.0.1", port: int = 8765, device: str = "auto") -> None:
    """Load the sidecar at `directory` and serve it until interrupted."""
    import uvicorn

    from dsr.sidecar.faiss_index import FaissIndex

    index = FaissIndex.load(directory, device=device)
    app = create_app(index, directory=directory, device=device)
    uvicorn.run(app, host=host, port=port, log_level="warning")
