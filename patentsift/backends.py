"""Build the configured index backend (the only place that knows both)."""

from __future__ import annotations

from index.base import Index
from patentsift.config import Config


def open_index(cfg: Config) -> Index:
    """Open the index the configuration names: the embedded default or Elasticsearch."""
    if cfg.backend == "elasticsearch":
        from index.elastic import ElasticIndex

        es = cfg.elasticsearch
        return ElasticIndex(
            es.hosts, index_prefix=es.index_prefix, api_key=es.api_key,
            basic_auth=(es.username, es.password) if es.username else None,
            ca_certs=es.ca_certs, verify_certs=es.verify_certs, request_timeout=es.request_timeout,
            analyzers=es.analyzers,
        )
    from index.embedded import EmbeddedIndex

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedIndex(cfg.index_path)
