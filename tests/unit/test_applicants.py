"""Applicant keys: one per company across case, width, punctuation and legal form (matching/applicants.py)."""

from __future__ import annotations

import numpy as np
import pytest

from index.model import Party, PatentDocument, PublicationNumber
from matching.applicants import applicant_key, matching_names
from matching.engine import _BatchMeta
from matching.explain import matched_applicants


@pytest.mark.parametrize(("spellings", "key"), [
    (["Samsung Electronics Co., Ltd.", "SAMSUNG ELECTRONICS CO LTD", "Samsung Electronics Co.,Ltd",
      "ＳＡＭＳＵＮＧ　ＥＬＥＣＴＲＯＮＩＣＳ　ＣＯ．，ＬＴＤ．", "samsung electronics"], "samsung electronics"),
    (["Robert Bosch GmbH", "ROBERT BOSCH G.M.B.H.", "Robert Bosch"], "robert bosch"),
    (["Siemens AG", "SIEMENS A.G.", "siemens"], "siemens"),
    (["Société Générale S.A.", "SOCIETE GENERALE SA", "Societe Generale, S.A."], "societe generale"),
    (["Bayerische Motoren Werke AG", "BAYERISCHE MOTOREN WERKE A.G."],
     "bayerische motoren werke"),
    (["Apple Inc.", "APPLE INC", "Apple, Incorporated"], "apple"),
    (["Sony Corporation", "SONY CORP.", "Sony Kabushiki Kaisha"], "sony"),
    (["株式会社デンソー", "デンソー株式会社", "㈱デンソー"], "デンソー"),  # the voicing mark of デ stays
    (["华为技术有限公司", "华为技术股份有限公司", "华为技术有限责任公司", "华为技术"], "华为技术"),
    (["トヨタ自動車株式会社", "トヨタ自動車(株)", "株式会社トヨタ自動車"], "トヨタ自動車"),
    (["삼성전자 주식회사", "삼성전자(주)", "삼성전자"], "삼성전자"),
    (["The Procter & Gamble Company", "THE PROCTER & GAMBLE CO."], "the procter & gamble"),
    (["Koninklijke Philips N.V.", "KONINKLIJKE PHILIPS NV"], "koninklijke philips"),
    (["STMicroelectronics S.r.l.", "STMICROELECTRONICS SRL"], "stmicroelectronics"),
])
def test_spellings_of_one_company_share_a_key(spellings, key):
    assert {applicant_key(s) for s in spellings} == {key}


def test_different_companies_keep_different_keys():
    names = ["Samsung Electronics Co., Ltd.", "Samsung SDI Co., Ltd.", "Samsung Display", "LG Electronics Inc.",
             "LG Chem, Ltd.", "Johnson & Johnson", "Johnson Controls", "华为技术有限公司", "华为终端有限公司"]
    assert len({applicant_key(n) for n in names}) == len(names)


def test_legal_form_words_only_go_after_the_name_and_a_bare_form_stays():
    assert applicant_key("AB Volvo") == "ab volvo"  # a leading word is the name
    assert applicant_key("Company") == "company" and applicant_key("有限公司") == "有限公司"
    assert applicant_key("") == ""


def test_matching_names_and_explanations_use_the_keys():
    assert matching_names(["samsung electronics"], ["SAMSUNG ELECTRONICS CO., LTD.", "Samsung SDI", "Samsung "
                                                    "Electronics Co Ltd"]) == ["SAMSUNG ELECTRONICS CO., LTD.",
                                                                               "Samsung Electronics Co Ltd"]
    doc = PatentDocument(pn=PublicationNumber("CN", "1", "A"),
                         applicants=[Party("华为技术有限公司"), Party("HUAWEI TECHNOLOGIES CO., LTD.")])
    assert matched_applicants(doc, ["Huawei Technologies"]) == ["HUAWEI TECHNOLOGIES CO., LTD."]
    assert matched_applicants(doc, ["华为技术股份有限公司", "Huawei Technologies Co Ltd"]) == [
        "华为技术有限公司", "HUAWEI TECHNOLOGIES CO., LTD."]
    other = PatentDocument(pn=PublicationNumber("US", "2", "B2"), applicants=[Party("Huawei Device Co., Ltd.")])
    mask = _BatchMeta([doc, other]).applicant_mask(["ｈｕａｗｅｉ ｔｅｃｈｎｏｌｏｇｉｅｓ"])
    np.testing.assert_array_equal(mask, [1.0, 0.0])
