"""dsr.reranker."""
