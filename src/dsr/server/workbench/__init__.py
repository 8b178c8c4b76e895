"""The relevance workbench of `dsr serve`: a page at `/_dsr/` and its JSON API under `/_dsr/api/`.

A search engineer types a query and sees up to three pipelines side by side, each hit with its
score and rank at every stage, grades hits, and watches NDCG move; the grades are kept under the data
dir and exported in the format `dsr eval` and `dsr train ranker` read. See `api` for the endpoints.
"""

from dsr.server.workbench.api import ENDPOINTS, Workbench, workbench_routes

__all__ = ["ENDPOINTS", "Workbench", "workbench_routes"]
