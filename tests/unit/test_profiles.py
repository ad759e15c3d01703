"""Profile validation and TOML round trips (pure)."""

from __future__ import annotations

import pytest

from subscribers.profiles import (
    Profile,
    ProfileError,
    dump_profiles_toml,
    parse_profiles_toml,
    validate_profile,
)


def test_valid_profile_is_normalized() -> None:
    p = validate_profile(Profile(name="wireless-power", description=" Wireless charging ", query="ti:charging",
                                 classes=["h02j 50/10", "H02J 7"], seeds=["US 11,646,472 B2"],
                                 exclude_terms=["Toy"], languages=["EN"], threshold=0.5, max_items=5))
    assert p.classes == ["H02J50/10", "H02J7"]
    assert p.seeds == ["US-11646472-B2"]
    assert p.exclude_terms == ["toy"] and p.languages == ["en"] and p.description == "Wireless charging"


def test_every_problem_is_reported_with_its_field() -> None:
    bad = Profile(name="bad name!", description="x")
    with pytest.raises(ProfileError) as info:
        validate_profile(bad)
    assert "name:" in str(info.value)
    with pytest.raises(ProfileError) as info:
        validate_profile(Profile(name="p", query="ti:(charging AND", classes=["XYZ"], seeds=["nonsense"],
                                 threshold=1.5, max_items=0))
    problems = " ".join(info.value.problems)
    for fld in ("query:", "classes:", "seeds:", "threshold:", "max_items:"):
        assert fld in problems
    assert "position" in problems  # the query error says where


def test_unknown_seed_is_an_error() -> None:
    known = {"US-11646472-B2"}
    ok = validate_profile(Profile(name="p", seeds=["US11646472B2"]), known_document=known.__contains__)
    assert ok.seeds == ["US-11646472-B2"]
    with pytest.raises(ProfileError, match="US-99999999-B2 is not in the index"):
        validate_profile(Profile(name="p", seeds=["US-99999999-B2"]), known_document=known.__contains__)


def test_empty_profile_is_rejected() -> None:
    with pytest.raises(ProfileError, match="profile is empty"):
        validate_profile(Profile(name="nothing"))


def test_toml_round_trip() -> None:
    profiles = [
        Profile(name="a", owner="ops@example.com", description='Say "hi" \\ there', query="ti:battery",
                classes=["H01M"], applicants=["Tesla, Inc."], threshold=0.4),
        Profile(name="b", description="Plant breeding", languages=["en", "de"]),
    ]
    again = parse_profiles_toml(dump_profiles_toml(profiles))
    assert again == profiles


def test_toml_errors_are_clear() -> None:
    with pytest.raises(ProfileError, match="not valid TOML"):
        parse_profiles_toml("[[profile]\nname = 1")
    with pytest.raises(ProfileError, match="unknown key"):
        parse_profiles_toml('[[profile]]\nname = "x"\ncolour = "red"\n')
    with pytest.raises(ProfileError, match="no profile found"):
        parse_profiles_toml('title = "x"\n')
