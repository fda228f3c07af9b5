"""The sandbox's profiles: every family of the catalogue has one, a platform's own line only
says where it differs, and a platform without one gets defaults derived from its spec."""

from __future__ import annotations

import dataclasses

from sandbox.generator import generate
from sandbox.profiles import FAMILY_PROFILES, PLATFORM_PROFILES, Catalogue
from sandbox.server import FAMILIES
from schemas.platforms import OPTIONS, PLATFORMS


def test_every_family_of_the_specs_has_a_profile_and_endpoints() -> None:
    assert set(FAMILY_PROFILES) == set(FAMILIES) == set(OPTIONS)


def test_platform_lines_name_only_platforms_of_the_catalogue() -> None:
    assert set(PLATFORM_PROFILES) <= set(PLATFORMS)


def test_a_platform_without_a_line_gets_an_equal_share_and_a_prefix_from_its_code() -> None:
    added = dataclasses.replace(PLATFORMS["yt_ldu"], code="yt_new")
    catalogue = Catalogue({**PLATFORMS, "yt_new": added})
    weights = catalogue.weights("yantai")
    assert weights["yt_new"] == 1 / 7
    assert sum(weights.values()) == 1.0
    assert catalogue["yt_new"].cert_prefix == "NEW"
    assert catalogue["yt_new"].facts == FAMILY_PROFILES["yx"]


def test_production_weights_are_the_percent_lines() -> None:
    assert Catalogue().weights("taian") == {
        "ta_yx": 0.35,
        "ta_tyjrp": 0.2,
        "ta_zjp": 0.25,
        "ta_sdty": 0.2,
    }


def test_a_world_without_a_platform_leaves_out_the_scenarios_on_it() -> None:
    without = {code: spec for code, spec in PLATFORMS.items() if code != "yt_samet"}
    dataset = generate(records=600, seed=3, platforms=without)
    assert "yt_samet" not in set(dataset.records["platform"])
    assert set(dataset.records["platform"]) == set(without)
    assert not dataset.truth().completion.empty
