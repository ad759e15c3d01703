"""Integration fixtures: the Elasticsearch node (es_url)."""

from tests.integration.es_support import es_url  # noqa: F401 - registers the fixture
