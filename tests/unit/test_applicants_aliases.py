"""Spellings of one applicant in different scripts, learned from real documents (matching/applicants.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harvest.ingest import parse_path
from index.model import Party, PatentDocument, PublicationNumber
from matching.applicants import ApplicantAliases, applicant_key, matching_names, script
from matching.engine import _BatchMeta
from matching.explain import matched_applicants

FETCHED = "2026-01-01T00:00:00+00:00"


def _docs(root: Path) -> dict[str, PatentDocument]:
    return {d.id: d for d in parse_path(root, fetched_at=FETCHED)}


@pytest.fixture(scope="module")
def family(shared_patents: Path) -> list[PatentDocument]:
    """Two real members of EPO family 50474376: CN-104968889-A (applicant in Latin script, EPODOC form) and
    RU-2015117646-A (the same applicant in Cyrillic)."""
    docs = _docs(shared_patents / "ep" / "ops")
    return [docs["CN-104968889-A"], docs["RU-2015117646-A"]]


def test_scripts() -> None:
    assert script("三星显示有限公司") == "han"
    assert script("Samsung Display Co., Ltd.") == "latin"
    assert script("САЙЕНТИФИК ДРИЛЛИНГ ИНТЕРНЭШНЛ, ИНК.") == "cyrillic"
    assert script("トヨタ自動車株式会社") == "kana"
    assert script("삼성전자 주식회사") == "hangul"


def test_family_members_give_both_spellings(family: list[PatentDocument]) -> None:
    cn, ru = family
    assert cn.family_id == ru.family_id == "50474376"
    watched = ["Scient Drilling Int"]
    assert matching_names(watched, [p.name for p in ru.applicants]) == []  # the keys differ
    aliases = ApplicantAliases()
    aliases.learn(family)
    assert matched_applicants(ru, watched, aliases) == ["САЙЕНТИФИК ДРИЛЛИНГ ИНТЕРНЭШНЛ, ИНК."]
    assert matching_names(["САЙЕНТИФИК ДРИЛЛИНГ ИНТЕРНЭШНЛ"], [p.name for p in cn.applicants], aliases) == [
        "SCIENT DRILLING INT"]
    meta = _BatchMeta(family, aliases)
    assert meta.applicant_mask(watched).tolist() == [1.0, 1.0]
    assert _BatchMeta(family).applicant_mask(watched).tolist() == [1.0, 0.0]  # without aliases: only its own script


def test_chinese_and_english_names_of_one_family(shared_patents: Path) -> None:
    """A real CNIPA document (三星显示有限公司) and a real US grant assigned to Samsung Display Co., Ltd., made
    members of one family for the test (the fixtures hold no such pair): the US grant's inventors, listed as
    applicants, are not taken for the company."""
    cn = _docs(shared_patents / "cn")["CN-113781974-A"]
    us = _docs(shared_patents / "uspto-grant" / "weekly")["US-08421353-B2"]
    assert [p.name for p in cn.applicants] == ["三星显示有限公司"]
    cn, us = dataclasses.replace(cn, family_id="F1"), dataclasses.replace(us, family_id="F1")
    aliases = ApplicantAliases()
    aliases.learn([cn, us])
    assert aliases.keys("SAMSUNG DISPLAY CO LTD") == {applicant_key("Samsung Display"), applicant_key("三星显示")}
    assert matched_applicants(cn, ["Samsung Display"], aliases) == ["三星显示有限公司"]
    assert matched_applicants(us, ["三星显示"], aliases) == ["Samsung Display Co., Ltd."]
    assert aliases.keys("Dong-Gyun Ra") == {applicant_key("Dong-Gyun Ra")}  # an inventor: no alias
    other = ApplicantAliases()
    other.learn([cn, dataclasses.replace(us, family_id="F2")])  # not one family: nothing learned
    assert matched_applicants(cn, ["Samsung Display"], other) == []


def test_one_document_naming_its_applicant_in_two_scripts(shared_patents: Path) -> None:
    """A CN publication that lists its applicant in Chinese and in English (built from a real one)."""
    cn = _docs(shared_patents / "cn")["CN-115212463-A"]
    both = dataclasses.replace(cn, applicants=[*cn.applicants, Party("Beijing Dajikangming Medical Equipment Co., "
                                                                     "Ltd.", "CN", "applicant")])
    aliases = ApplicantAliases()
    aliases.learn([both])
    plain = dataclasses.replace(cn, pn=PublicationNumber("CN", "115212464", "A"))  # a later one, Chinese only
    assert matched_applicants(plain, ["BEIJING DAJIKANGMING MEDICAL EQUIPMENT CO LTD"], aliases) == [
        "北京大基康明医疗设备有限公司"]
    # two applicants in each script pair up in order; unequal counts pair nothing
    two = ApplicantAliases()
    two.learn([dataclasses.replace(cn, applicants=[Party("甲公司"), Party("乙公司"), Party("Alpha Co"),
                                                   Party("Beta Co")])])
    assert two.keys("Alpha") == {"alpha", "甲"} and two.keys("乙") == {"beta", "乙"}
    odd = ApplicantAliases()
    odd.learn([dataclasses.replace(cn, applicants=[Party("甲公司"), Party("Alpha Co"), Party("Beta Co")])])
    assert odd.keys("Alpha") == {"alpha"}
