"""The flat, searchable view of a PatentDocument that both backends index (one definition, two engines)."""

from __future__ import annotations

from typing import Any

from index.model import PatentDocument


def claims_text(doc: PatentDocument) -> str:
    return "\n".join(c.text for c in doc.claims)


def index_fields(doc: PatentDocument) -> dict[str, Any]:
    """Field names follow the query language (index.query.ast): ti ab cl desc pa in ipc cpc pd ad pn an cc kind."""
    ipc = [c.symbol for c in doc.ipc]
    cpc = [c.symbol for c in doc.cpc]
    return {
        "id": doc.id,
        "pn": doc.pn.keys(),
        "cc": doc.pn.country,
        "kind": doc.pn.kind,
        "number": doc.pn.number,
        "pd": doc.publication_date.isoformat() if doc.publication_date else None,
        "ad": doc.application_date.isoformat() if doc.application_date else None,
        "year": doc.publication_date.year if doc.publication_date else None,
        "an": (doc.application_number or "").upper().replace(" ", "") or None,
        "ti": "\n".join(v for v in doc.titles.values() if v),
        "ab": "\n".join(v for v in doc.abstracts.values() if v),
        "cl": claims_text(doc),
        "desc": doc.description,
        "pa": "\n".join(p.name for p in doc.applicants),
        "in": "\n".join(p.name for p in doc.inventors),
        "applicant_norm": sorted({p.normalized for p in doc.applicants}),
        "ipc": ipc,
        "cpc": cpc,
        "ipc_subclass": sorted({c.subclass_symbol for c in doc.ipc if c.subclass_symbol}),
        "cpc_subclass": sorted({c.subclass_symbol for c in doc.cpc if c.subclass_symbol}),
        "lang": doc.lang,
        "fam": doc.family_id,
    }
