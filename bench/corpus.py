"""A deterministic corpus generator: N realistic patent documents made from the real fixtures.

    python bench/corpus.py --docs 10000 --seed 1 [--stats]       # prints what it would generate

The templates are every document the project's parsers read from the real files in shared/data/patents and
patentsift/sample_data (US grants and applications of several formats, EP, CN, JP). Each generated document:

* is in English (60%), Chinese (20%), Japanese (8%), German, French or Russian, as its template;
* has a new, unique publication number (`<country><number><kind>` from the template's country and kind, the
  number `7` + a seed-dependent offset + its position), a new application number and family id;
* is dated uniformly in 2000-01-01 .. 2025-12-31 (application 1-4 years earlier);
* takes its title and abstract from several real documents of the same language (title words swapped with
  other titles' words; abstract sentences from two or three abstracts), its claims and description from its
  template (so text lengths follow the real documents), optionally cut to a length drawn per document;
* keeps the template's classes and adds one to three drawn from every class in the fixtures (IPC/CPC spread
  over ~all subclasses the fixtures name, plus variants of their main groups);
* gets one or two applicants from a long-tailed pool (real applicant names x synthetic companies, Zipf-like,
  so facets and `pa:` queries see a few big applicants and many small ones).

The same (n, seed) always gives the same documents, in the same order; documents are generated lazily, so
100k or 1M need no memory beyond one document.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from index.model import Classification, Party, PatentDocument, PublicationNumber  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "patents"
SAMPLE_DATA = ROOT / "patentsift" / "sample_data"
START, END = date(2000, 1, 1), date(2025, 12, 31)
COMPANY_WORDS = ("Advanced", "Global", "Nano", "Quantum", "Bright", "Northern", "Pacific", "Smart", "Green",
                 "Precision", "United", "Delta", "Orion", "Sino", "Yangtze", "Pearl", "Alpine", "Nordic")
COMPANY_KINDS = ("Technologies", "Electronics", "Materials", "Medical", "Energy", "Systems", "Devices",
                 "Instruments", "Semiconductor", "Pharma", "Robotics", "Photonics", "Motors", "Chemical")
COMPANY_FORMS = ("Inc.", "Co., Ltd.", "GmbH", "Corporation", "AG", "S.A.", "LLC", "K.K.")
ZH_COMPANY = ("华", "中", "新", "科", "光", "电", "智", "能", "海", "天", "东", "通", "达", "信", "安", "明")
LANG_WEIGHTS = {"en": 0.6, "zh": 0.2, "ja": 0.08, "de": 0.05, "fr": 0.04, "ru": 0.03}  # share of documents
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")


@cache
def templates(data: Path = DEFAULT_DATA) -> tuple[PatentDocument, ...]:
    """Every full document the project's parsers read from the real files (sorted by id)."""
    from harvest.formats import parse_raw
    from harvest.raw import RawDocument, Reject

    files = sorted(p for root in (data, SAMPLE_DATA) if root.is_dir() for p in root.rglob("*.xml"))
    by_id: dict[str, PatentDocument] = {}
    for path in files:
        blob = path.read_bytes()
        parts = [b"<?xml" + p for p in blob.split(b"<?xml") if p.strip()] if blob.count(b"<?xml") > 1 else [blob]
        for i, part in enumerate(parts, start=1):
            try:
                for doc in parse_raw(RawDocument(part, str(path), i), fetched_at="2026-01-01T00:00:00+00:00"):
                    if not doc.partial and doc.title() and (doc.abstract() or doc.claims or doc.description):
                        by_id.setdefault(doc.id, doc)
            except Reject:
                continue
            except Exception:  # noqa: BLE001 - a fixture the parsers cannot read is not a template
                continue
    if not by_id:
        raise SystemExit(f"no fixtures found under {data} or {SAMPLE_DATA}")
    return tuple(by_id[k] for k in sorted(by_id))


class CorpusGenerator:
    """`CorpusGenerator(seed).documents(n)` -> n documents; `.queries()` -> real words for query benches."""

    def __init__(self, seed: int = 1, data: Path = DEFAULT_DATA, max_description: int | None = None) -> None:
        self.seed = seed
        self.base = templates(data)
        self.max_description = max_description
        rng = random.Random(f"pool-{seed}")
        langs = sorted({self._lang(d) for d in self.base})
        self.by_lang = {lang: [d for d in self.base if self._lang(d) == lang] for lang in langs}
        self.langs = langs
        self.lang_weights = [LANG_WEIGHTS.get(lang, 0.02) for lang in langs]
        self.title_words = {lang: sorted({w for d in docs for w in _words(d.title(), lang)})
                            for lang, docs in self.by_lang.items()}
        self.sentences = {lang: [s for d in docs for s in _sentences(d.abstract())] or ["."]
                          for lang, docs in self.by_lang.items()}
        classes = sorted({(c.scheme, c.symbol) for d in self.base for c in (*d.ipc, *d.cpc)})
        self.classes = classes or [("IPC", "H01L21/00")]
        self.variants = _class_variants(self.classes, rng)
        self.applicants = _applicant_pool(self.base, rng)
        self.offset = random.Random(f"numbers-{seed}").randrange(1_000_000, 9_000_000)

    @staticmethod
    def _lang(doc: PatentDocument) -> str:
        return (doc.lang or next(iter(doc.titles), "en") or "en").lower()

    def documents(self, n: int, start: int = 0) -> Iterator[PatentDocument]:
        """Documents start .. start+n-1 of this seed's infinite sequence (each depends only on seed and i)."""
        for i in range(start, start + n):
            yield self.document(i)

    def document(self, i: int) -> PatentDocument:
        rng = random.Random(f"{self.seed}-{i}")
        lang = rng.choices(self.langs, self.lang_weights)[0]
        docs = self.by_lang[lang]
        t = docs[rng.randrange(len(docs))]
        pd = START + timedelta(days=rng.randrange((END - START).days + 1))
        ad = pd - timedelta(days=rng.randrange(365, 4 * 365))
        number = f"7{self.offset + i:08d}"
        pn = PublicationNumber(t.pn.country, number, t.pn.kind)
        title = self._title(t, lang, rng)
        abstract = self._abstract(lang, rng)
        description = t.description
        cut = self.max_description
        if description and rng.random() < 0.3:  # shorter descriptions now and then (applications, utility models)
            cut = min(cut or len(description), max(400, int(len(description) * rng.uniform(0.2, 0.9))))
        if cut is not None and len(description) > cut:
            description = description[:cut]
        extra = [self.variants[rng.randrange(len(self.variants))] for _ in range(rng.randint(1, 3))]
        ipc = list(t.ipc) + [Classification("IPC", s) for sch, s in extra if sch == "IPC"]
        cpc = list(t.cpc) + [Classification("CPC", s) for sch, s in extra if sch == "CPC"]
        k = int(len(self.applicants) * rng.random() ** 2.5)  # long-tailed: ~5% the biggest, most rare
        applicants = [Party(self.applicants[k][0], self.applicants[k][1])]
        if rng.random() < 0.2:
            other = self.applicants[rng.randrange(len(self.applicants))]
            if other[0] != applicants[0].name:
                applicants.append(Party(other[0], other[1]))
        return dataclasses.replace(
            t, pn=pn, publication_date=pd, application_date=ad,
            application_number=f"{t.pn.country}{ad.year}{rng.randrange(10**6):06d}",
            titles={lang: title}, abstracts={lang: abstract} if abstract else {},
            description=description, lang=lang, ipc=_dedupe(ipc), cpc=_dedupe(cpc), applicants=applicants,
            family_id=str(80_000_000 + (i // 3 if rng.random() < 0.1 else i)),  # a few shared families
            priorities=[], citations=t.citations[:5], provenance=None, partial=False,
        )

    def _title(self, t: PatentDocument, lang: str, rng: random.Random) -> str:
        words = _words(t.title(), lang)
        pool = self.title_words.get(lang) or words
        if not words:
            return t.title()
        for _ in range(rng.randint(1, max(1, len(words) // 3))):
            words[rng.randrange(len(words))] = pool[rng.randrange(len(pool))]
        return ("" if _cjk_lang(lang) else " ").join(words)

    def _abstract(self, lang: str, rng: random.Random) -> str:
        pool = self.sentences.get(lang) or ["."]
        picked = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(2, 5))]
        return ("" if _cjk_lang(lang) else " ").join(picked).strip()

    def queries(self, lang: str = "en", k: int = 20) -> list[str]:
        """`k` title words of `lang` that occur in the corpus (deterministic), for term queries."""
        words = [w for w in self.title_words.get(lang, []) if len(w) > 4 and w.isalpha()]
        return random.Random(f"q-{self.seed}").sample(words, min(k, len(words)))


def _cjk_lang(lang: str) -> bool:
    return lang in ("zh", "ja", "ko")


def _words(text: str, lang: str) -> list[str]:
    if _cjk_lang(lang):  # two-character chunks: enough to vary a CJK title without a segmenter
        text = text.strip()
        return [text[i:i + 2] for i in range(0, len(text), 2)]
    return text.split()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 3]


def _dedupe(classes: list[Classification]) -> list[Classification]:
    seen: set[str] = set()
    out = []
    for c in classes:
        if c.symbol not in seen:
            seen.add(c.symbol)
            out.append(c)
    return out


def _class_variants(classes: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """The fixtures' classes plus neighbouring groups (same subclass, other main groups / subgroups)."""
    out = list(classes)
    for scheme, sym in classes:
        m = re.match(r"^([A-H]\d\d[A-Z])(\d+)/(\d+)$", sym.replace(" ", ""))
        if not m:
            continue
        for _ in range(3):
            out.append((scheme, f"{m.group(1)}{rng.randint(1, 99)}/{rng.choice([0, 2, 4, 6, 8, 10, 12, 14, 16])}"))
    return sorted(set(out))


def _applicant_pool(base: tuple[PatentDocument, ...], rng: random.Random) -> list[tuple[str, str | None]]:
    """Real applicants first (the head of the Zipf-like draw), then ~2,000 synthetic companies."""
    real = sorted({(p.name, p.country) for d in base for p in d.applicants if p.name})
    rng.shuffle(real)
    synthetic: list[tuple[str, str | None]] = []
    for a in COMPANY_WORDS:
        for b in COMPANY_KINDS:
            synthetic.append((f"{a} {b} {COMPANY_FORMS[len(synthetic) % len(COMPANY_FORMS)]}", "US"))
    for _ in range(1500):
        name = "".join(rng.choice(ZH_COMPANY) for _ in range(rng.randint(2, 4)))
        synthetic.append((f"{name}科技有限公司", "CN"))
    rng.shuffle(synthetic)
    return real + synthetic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stats", action="store_true", help="sizes, languages and distinct values, not documents")
    args = ap.parse_args(argv)
    gen = CorpusGenerator(args.seed)
    print(f"{len(gen.base)} templates, languages {sorted(gen.by_lang)}, {len(gen.classes)} classes, "
          f"{len(gen.applicants)} applicants", file=sys.stderr)
    if not args.stats:
        for d in gen.documents(args.docs):
            print(d.id, d.publication_date, d.lang, d.title()[:70], "|", d.applicants[0].name, "|",
                  ",".join(c.symbol for c in d.ipc[:3]))
        return 0
    from collections import Counter

    langs: Counter[str] = Counter()
    apps: Counter[str] = Counter()
    text = 0
    for d in gen.documents(args.docs):
        langs[d.lang or "?"] += 1
        apps[d.applicants[0].name] += 1
        text += len(d.description) + len(d.abstract()) + sum(len(c.text) for c in d.claims)
    print(f"{args.docs} documents, {text / 1e6:.1f} M characters of text, languages {dict(langs)}, "
          f"{len(apps)} applicants (top: {apps.most_common(3)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
