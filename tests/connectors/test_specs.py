"""A platform spec is checked against its family's options when it loads: a typo fails at
start-up, naming the file and the key, never in the middle of a pull."""

from __future__ import annotations

from importlib import resources

import pytest

from schemas.platforms import OPTIONS, PLATFORMS, SpecError, read_spec

YX = (resources.files("schemas") / "specs" / "ta_yx.toml").read_text(encoding="utf-8")


def test_every_spec_of_the_catalogue_is_valid_for_its_family() -> None:
    assert {spec.family for spec in PLATFORMS.values()} == set(OPTIONS)


def test_a_misspelt_option_fails_naming_the_file_and_the_key() -> None:
    with pytest.raises(SpecError, match=r"ta_yx\.toml.*options\.page_sise"):
        read_spec("ta_yx.toml", YX.replace("page_size =", "page_sise ="))


def test_a_missing_option_fails_naming_it() -> None:
    with pytest.raises(SpecError, match=r"options\.token_path: Field required"):
        read_spec("ta_yx.toml", YX.replace('token_path = "/openapi/oauth/token"\n', ""))


def test_a_field_mapped_to_no_raw_column_fails() -> None:
    with pytest.raises(SpecError, match="not raw columns: raw_idd"):
        read_spec("ta_yx.toml", YX.replace('idCard = "raw_id"', 'idCard = "raw_idd"'))


def test_a_wrongly_typed_option_fails() -> None:
    with pytest.raises(SpecError, match=r"options\.page_size"):
        read_spec("ta_yx.toml", YX.replace("page_size = 500", 'page_size = "many"'))


def test_an_unknown_family_fails_naming_the_known_ones() -> None:
    with pytest.raises(SpecError, match="family of treewises, yx"):
        read_spec("ta_yx.toml", YX.replace('family = "yx"', 'family = "xy"'))
