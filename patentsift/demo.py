"""`patentsift demo`: the main job end to end on shipped sample data, with no server to install.

Lays the sample USPTO weekly files out as the bulk-data site does (zipped weekly archives under year listings),
serves them on 127.0.0.1, crawls them with the real Scrapy spider into an embedded index, and runs searches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from patentsift.config import Config
from patentsift.wiring import System

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data" / "uspto"
SAMPLE_PROFILES = Path(__file__).resolve().parent / "sample_data" / "profiles.toml"
DEMO_QUERIES = (
    ("words anywhere in title, abstract, claims or description", "shield* AND electromagnetic"),
    ("a phrase in the claims, only grants published 2013", 'cl:"printed circuit board" AND pd:2013'),
    ("a classification subclass and an applicant", "ipc:H01L OR pa:Samsung"),
    ("fielded boolean with NOT", "ti:(helmet OR garment OR swimsuit) NOT ti:bed"),
    ("a publication number in any spelling", "pn:US8418361"),
)


def sample_files() -> list[Path]:
    return sorted(SAMPLE_DIR.rglob("*.xml"))


def run_matching(system: System, console: Console, per_profile: int = 3) -> None:
    """Store the sample profiles, run the matching engine once and print each profile's best explained matches."""
    from matching.explain import describe
    from subscribers.profiles import load_profiles_toml, validate_profile

    index, store = system.index, system.match_store
    for profile in load_profiles_toml(SAMPLE_PROFILES):
        store.save_profile(validate_profile(profile, lambda pn: index.get(pn) is not None))
    report = system.matching_engine().run()
    console.print(f"  {report.documents} new documents, "
                  f"{sum(len(m) for m in report.matches.values())} explained matches stored")
    for name, matches in sorted(report.matches.items()):
        console.print(f"\n[bold]profile {name}[/bold]")
        for n, m in enumerate(matches[:per_profile], 1):
            console.print(f"  {n}. [cyan]{m.doc.id}[/cyan] {escape(m.doc.title())} [dim]({m.score:.2f})[/dim]")
            for line in describe(m.explanation, m.breakdown)[:4]:
                console.print(f"       {escape(re.sub(r'</?mark>', '', line))}")


def run_demo(cfg: Config, console: Console) -> int:
    """Harvest the sample site into `<data_dir>/demo/` (a data directory of its own, on the embedded index) with
    the same wiring as every command, and print search results and explained matches; returns an exit code."""
    from harvest.testserver import build_fixture_site, serve_fixtures
    from index.base import FACETS, SearchRequest
    from index.query.parser import parse_query
    from patentsift.cli_common import print_facets, print_results
    from patentsift.wiring import HarvestJobs

    demo_dir = cfg.data_dir / "demo"
    if demo_dir.exists():
        shutil.rmtree(demo_dir)  # start clean so the demo always shows a full first harvest
    demo_dir.mkdir(parents=True)
    demo_cfg = Config(backend="embedded", data_dir=demo_dir, secret_key=cfg.secret_key)
    os.environ.setdefault("PATENTSIFT_CRAWL_SETTINGS", json.dumps(
        {"AUTOTHROTTLE_START_DELAY": 0.05, "DOWNLOAD_DELAY": 0, "LOG_LEVEL": "WARNING"}))
    with System(demo_cfg) as system, tempfile.TemporaryDirectory(prefix="patentsift-demo-site-") as site:
        pages = build_fixture_site(sample_files(), site)
        listings = sorted({page.path.rsplit("/", 1)[0] + "/" for page in pages})
        with serve_fixtures(site) as base:
            urls = [base + listing for listing in listings]
            console.rule("[bold]1. harvest[/bold]: Scrapy crawls a local copy of the USPTO bulk-data site")
            for url in urls:
                console.print(f"  listing {url}")
            outcome = system.harvest(HarvestJobs(crawls=[("uspto", urls)]))
        summary = outcome.crawl_summaries[0]
        console.print(f"  {summary}")
        state = system.harvest_state()
        try:
            for r in state.rejects():
                console.print(f"  [dim]{'skipped' if r.skip else 'rejected'}: {r.file} #{r.position}: "
                              f"{r.reason}[/dim]")
        finally:
            state.close()
        index = system.index
        console.rule(f"[bold]2. index[/bold]: {index.count()} documents in {demo_cfg.index_path}")
        overview = index.search(SearchRequest(query=parse_query("pd:[1990 TO 2030]"), facets=FACETS, limit=0))
        print_facets(overview.facets)
        console.rule("[bold]3. search[/bold]")
        for label, query in DEMO_QUERIES:
            console.print(f"\n[bold]$ patentsift search '{query}'[/bold]   [dim]# {label}[/dim]")
            print_results(index.search(SearchRequest(query=parse_query(query), limit=3)))
        console.rule("[bold]4. match[/bold]: the sample interest profiles against the new documents")
        run_matching(system, console)
        console.print(f"\nTry it yourself: patentsift --data-dir {demo_dir} search 'ti:shield* OR cl:\"circuit board\"'"
                      f" --facets\n                 patentsift --data-dir {demo_dir} profile preview garments "
                      "--since 2000-01-01")
        return 0 if summary.indexed > 0 and not summary.failed else 1
