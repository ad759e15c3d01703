"""Configuration: a TOML file plus environment variables; the shell reads it and hands values to the rooms."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "PATENTSIFT_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("patentsift.toml"), Path("~/.config/patentsift/config.toml").expanduser())


class ConfigError(ValueError):
    """A configuration problem the user must fix (the message says which setting)."""


@dataclass
class ElasticsearchConfig:
    hosts: list[str] = field(default_factory=lambda: ["http://127.0.0.1:9200"])
    index_prefix: str = "patentsift"
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    analyzers: str = "builtin"  # builtin | icu | smartcn (needs the plugin on the cluster)
    shards: int = 1  # primary shards of a new index (a rebuild applies a change)
    replicas: int = 0  # replicas of a new index: 1 on a cluster, so losing a node loses nothing
    bulk_threads: int = 2  # bulk requests in flight at once during a load
    bulk_relax_replicas: bool = False  # large loads run with 0 replicas (faster; a node lost mid-load loses its part)


@dataclass
class HarvestConfig:
    user_agent: str | None = None
    uspto_urls: list[str] = field(default_factory=list)  # bulk-data listing pages to crawl
    ep_urls: list[str] = field(default_factory=list)  # publication-server listing pages
    keep_downloads: bool = False
    paths: list[str] = field(default_factory=list)  # files or folders on disk the pipeline ingests each cycle
    # parse worker processes for files on disk and downloads (PATENTSIFT_HARVEST_WORKERS): "auto" (one per core, up
    # to 4, for files of 32 MB or more on 2+ cores), or a count; 0 or 1 parse in the harvesting process
    parse_workers: int | str = "auto"


@dataclass
class ScheduleConfig:
    """When `patentsift scheduler` runs the cycle (harvest, match, curate, deliver)."""

    cycle: str = "0 6 * * *"  # 5-field cron expression
    timezone: str = "UTC"  # IANA name the cron expression is read in
    misfire_grace_time: int = 86400  # seconds after a missed run within which it still runs (once)


@dataclass
class SmtpConfig:
    """Where digests are sent from (distribution/delivery.py); username/password come from the environment."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "starttls"  # starttls | tls (implicit, usually port 465) | none
    username: str | None = None  # PATENTSIFT_SMTP_USERNAME
    password: str | None = None  # PATENTSIFT_SMTP_PASSWORD
    from_address: str = "patentsift@localhost"
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None  # mailto address for List-Unsubscribe (default: from_address)
    base_url: str = "http://127.0.0.1:8000"  # public web address the unsubscribe/manage links point at
    timeout: float = 30.0
    concurrency: int = 8
    max_attempts: int = 5
    backoff_base: float = 1.0  # seconds; doubled on each retry
    backoff_max: float = 60.0


@dataclass
class Config:
    backend: str = "embedded"  # embedded | elasticsearch
    data_dir: Path = field(default_factory=lambda: Path("~/.patentsift").expanduser())
    elasticsearch: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    database_url: str | None = None  # the shared database (PATENTSIFT_DATABASE_URL); default SQLite in data_dir
    secret_key: str | None = None  # signs subscriber links (PATENTSIFT_SECRET_KEY); see load_secret_key
    # reverse proxies (IP addresses or networks) whose X-Forwarded-For/-Proto the web app believes; default none
    trusted_proxies: list[str] = field(default_factory=list)  # PATENTSIFT_TRUSTED_PROXIES (comma-separated)
    source: Path | None = None  # the file this was read from

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.sqlite"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "harvest-state.sqlite"

    @property
    def downloads_dir(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def database(self) -> str:
        """The shared database: `database_url`, else data_dir/patentsift.sqlite (a path or an SQLAlchemy URL)."""
        return self.database_url or str(self.data_dir / "patentsift.sqlite")

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"


def load_secret_key(cfg: Config) -> str:
    """The key that signs subscriber tokens: $PATENTSIFT_SECRET_KEY, else data_dir/secret.key (created 0600)."""
    if cfg.secret_key:
        return cfg.secret_key
    path = cfg.secret_key_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48) + "\n")
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigError(f"{path}: the secret key is too short (delete it to generate a new one)")
    cfg.secret_key = key
    return key


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    return cls(**data)


def load_config(path: Path | None = None, **overrides: Any) -> Config:
    """Read the config file (explicit path, $PATENTSIFT_CONFIG, ./patentsift.toml, ~/.config/...), then env vars."""
    candidates = [path] if path else ([Path(os.environ[CONFIG_ENV])] if os.environ.get(CONFIG_ENV) else [])
    candidates += [] if path or os.environ.get(CONFIG_ENV) else list(DEFAULT_CONFIG_PATHS)
    data: dict[str, Any] = {}
    source = None
    for candidate in candidates:
        if candidate.exists():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{candidate}: {exc}") from None
            source = candidate
            break
        if path is not None:
            raise ConfigError(f"config file not found: {candidate}")
    es = _section(ElasticsearchConfig, data.pop("elasticsearch", {}), "elasticsearch")
    hv = _section(HarvestConfig, data.pop("harvest", {}), "harvest")
    sched = _section(ScheduleConfig, data.pop("schedule", {}), "schedule")
    smtp = _section(SmtpConfig, data.pop("smtp", {}), "smtp")
    unknown = set(data) - {"backend", "data_dir", "database_url", "trusted_proxies"}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    cfg = Config(backend=data.get("backend", "embedded"), elasticsearch=es, harvest=hv, source=source,
                 database_url=data.get("database_url"), trusted_proxies=list(data.get("trusted_proxies", [])))
    cfg.schedule = sched
    cfg.smtp = smtp
    if "data_dir" in data:
        cfg.data_dir = Path(data["data_dir"]).expanduser()
    _apply_env(cfg)
    cfg.harvest.parse_workers = _workers(cfg.harvest.parse_workers)
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, Path(value).expanduser() if key == "data_dir" else value)
    cfg.backend = normalize_backend(cfg.backend)
    return cfg


def normalize_backend(name: str) -> str:
    aliases = {"embedded": "embedded", "sqlite": "embedded", "es": "elasticsearch", "elasticsearch": "elasticsearch"}
    try:
        return aliases[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}: use 'embedded' or 'elasticsearch' (es)") from None


def _workers(value: object) -> int | str:
    """[harvest] parse_workers checked: "auto" or a whole number >= 0 (a numeric string from the environment)."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if isinstance(value, bool) or not text.isdigit():
        raise ConfigError(f"[harvest] parse_workers (PATENTSIFT_HARVEST_WORKERS) must be \"auto\" or a whole number "
                          f">= 0, not {value!r}")
    return int(text)


def _apply_env(cfg: Config) -> None:
    """Secrets and deployment settings come from the environment, never from files in the repo."""
    env = os.environ
    if env.get("PATENTSIFT_BACKEND"):
        cfg.backend = env["PATENTSIFT_BACKEND"]
    if env.get("PATENTSIFT_HOME"):
        cfg.data_dir = Path(env["PATENTSIFT_HOME"]).expanduser()
    cfg.database_url = env.get("PATENTSIFT_DATABASE_URL") or cfg.database_url
    cfg.secret_key = env.get("PATENTSIFT_SECRET_KEY") or cfg.secret_key
    if env.get("PATENTSIFT_HARVEST_WORKERS"):
        cfg.harvest.parse_workers = env["PATENTSIFT_HARVEST_WORKERS"]
    if env.get("PATENTSIFT_TRUSTED_PROXIES") is not None:
        cfg.trusted_proxies = [p.strip() for p in env["PATENTSIFT_TRUSTED_PROXIES"].split(",") if p.strip()]
    es = cfg.elasticsearch
    if env.get("PATENTSIFT_ES_URL"):
        es.hosts = [h.strip() for h in env["PATENTSIFT_ES_URL"].split(",") if h.strip()]
    es.api_key = env.get("PATENTSIFT_ES_API_KEY", es.api_key)
    es.username = env.get("PATENTSIFT_ES_USERNAME", es.username)
    es.password = env.get("PATENTSIFT_ES_PASSWORD", es.password)
    es.ca_certs = env.get("PATENTSIFT_ES_CA_CERTS", es.ca_certs)
    cfg.smtp.username = env.get("PATENTSIFT_SMTP_USERNAME", cfg.smtp.username)
    cfg.smtp.password = env.get("PATENTSIFT_SMTP_PASSWORD", cfg.smtp.password)
    if env.get("PATENTSIFT_SMTP_HOST"):
        cfg.smtp.host = env["PATENTSIFT_SMTP_HOST"]
    if env.get("PATENTSIFT_SMTP_PORT"):
        cfg.smtp.port = int(env["PATENTSIFT_SMTP_PORT"])
    if env.get("PATENTSIFT_ES_INDEX_PREFIX"):
        es.index_prefix = env["PATENTSIFT_ES_INDEX_PREFIX"]
