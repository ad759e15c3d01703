"""Integration fixtures: the Elasticsearch node (es_url) and the web app's test site (docs, site_template, site,
client; tests/integration/web_site.py) and the model fixtures (embedder, cache; tests/integration/model_support.py)."""

from tests.integration.es_support import es_url  # noqa: F401 - registers the fixture
from tests.integration.model_support import cache, embedder  # noqa: F401 - registers the fixtures
from tests.integration.web_site import client, docs, site, site_template  # noqa: F401 - registers the fixtures
