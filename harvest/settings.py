"""Scrapy settings for the patentsift harvesters: polite defaults, every value overridable.

`harvest.crawl.crawl(..., settings_overrides=...)` (or `-s NAME=VALUE` on `python -m harvest.crawl`) overrides any
of them. The contact URL in the User-Agent comes from `PATENTSIFT_CONTACT_URL` so operators can say who they are.
"""

from __future__ import annotations

import os

BOT_NAME = "patentsift"
SPIDER_MODULES = ["harvest.spiders"]
NEWSPIDER_MODULE = "harvest.spiders"

CONTACT_URL = os.environ.get("PATENTSIFT_CONTACT_URL", "https://github.com/patentsift/patentsift")
USER_AGENT = f"patentsift/0.1 (+{CONTACT_URL})"

# Politeness: obey robots.txt, few parallel requests per host, adaptive delays.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 4
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0  # AutoThrottle never goes below this
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 5.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Transient failures (rate limiting, overloaded servers, dropped connections) are retried.
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]

# Weekly archives are large (USPTO full-text zips run to a few hundred MB); bodies are held in memory.
DOWNLOAD_TIMEOUT = 900
DOWNLOAD_MAXSIZE = 2 * 1024**3
DOWNLOAD_WARNSIZE = 512 * 1024**2

HTTPCACHE_ENABLED = False
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # Scrapy 2.19+: an HTTP code-execution console, like telnet; never wanted here
# Read by Scrapy 2.7-2.12 (silences the fingerprinter deprecation warning); newer versions ignore it.
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

ITEM_PIPELINES = {"harvest.pipelines.IngestPipeline": 300}

# patentsift's own settings.
PATENTSIFT_DOWNLOADS_DIR = "downloads"  # where fetched files are written before ingestion
KEEP_DOWNLOADS = False  # keep files after successful ingestion
PATENTSIFT_BATCH_SIZE = 500  # documents per index upsert
PATENTSIFT_PARSE_WORKERS = "auto"  # parse worker processes per downloaded file (harvest.parallel), or a count
PATENTSIFT_INDEX_FACTORY = None  # import path of a callable (settings) -> Index, set by harvest.crawl
PATENTSIFT_STATE_PATH = None  # the harvest state's SQLite file, set by harvest.crawl
