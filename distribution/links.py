"""Links to a publication's page at its office's public register (pure)."""

from __future__ import annotations

import re
from urllib.parse import quote

from index.model import PublicationNumber

ESPACENET = "https://worldwide.espacenet.com/patent/search?q=pn%3D{pn}"
USPTO = "https://ppubs.uspto.gov/pubwebapp/external.html?q={number}.pn.&db={db}"
CNIPA = "https://epub.cnipa.gov.cn/patent/{pn}"
JPLATPAT = "https://www.j-platpat.inpit.go.jp/c1800/PU/JP-{number}/{doc_type}/ja"
# J-PlatPat document types in its fixed addresses: 11 unexamined publication (A), 15 registered patent (B)
_JP_TYPES = {"A": "11", "B": "15"}


def office_link(pn: PublicationNumber) -> str:
    """USPTO Patent Public Search for US, CNIPA for CN, J-PlatPat for JP, Espacenet for everything else."""
    compact = f"{pn.country}{pn.number}{pn.kind}"
    if pn.country == "US":
        db = "US-PGPUB" if pn.kind.startswith("A") or (len(pn.number) == 11 and pn.number[:2] in ("19", "20")) \
            else "USPAT"
        return USPTO.format(number=quote(pn.number), db=db)
    if pn.country == "CN":
        return CNIPA.format(pn=quote(compact))
    if pn.country == "JP" and pn.kind[:1] in _JP_TYPES:
        m = re.fullmatch(r"(\d{4})(\d{6})", pn.number)
        number = f"{m.group(1)}-{m.group(2)}" if m and pn.kind.startswith("A") else pn.number
        return JPLATPAT.format(number=quote(number), doc_type=_JP_TYPES[pn.kind[:1]])
    return ESPACENET.format(pn=quote(compact))
