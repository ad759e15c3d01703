"""Elasticsearch backend: the Index protocol on an Elasticsearch 8.x cluster (see backend.ElasticIndex)."""

from index.elastic.backend import BulkInterrupted, ElasticIndex

__all__ = ["BulkInterrupted", "ElasticIndex"]
