"""The YAML ops edit: the shipped config, and clear errors with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.cli import main
from hotline.config import LoadedConfig
from hotline.config.load import key_depths
from tests.support.config_files import edit, errors_of, line_of

SPECIALTIES = """
business-registration license-change food-license product-quality fair-competition trademark
patent tax-registration tax-invoice tax-filing tax-refund tax-incentives social-insurance
labor-relations talent-residence foreign-work-permit training-subsidy housing-fund
construction-permit planning-permit land-use property-registration fire-safety work-safety
environmental-permit pollution water-supply electricity gas-heating telecom customs
foreign-trade foreign-investment financing payment-arrears subsidies high-tech startup-parks
procurement government-services inspections-fees corporate-credit drugs-devices health-permits
transport-logistics truck-pass culture-tourism education-training commercial-disputes general
""".split()


def test_shipped_config_has_exactly_the_50_desks(shipped: LoadedConfig) -> None:
    assert sorted(shipped.plan.specialties) == sorted(SPECIALTIES)
    assert len(SPECIALTIES) == 50
    assert shipped.plan.specialties["foreign-work-permit"].department == "science-tech"
    assert shipped.plan.specialties["tax-invoice"].name["zh"] == "发票"
    assert shipped.warnings == ()


def test_every_desk_is_reached_by_keys_in_at_most_three_presses(shipped: LoadedConfig) -> None:
    depths = key_depths(shipped.plan)
    assert set(depths) == set(SPECIALTIES)
    assert max(depths.values()) <= 3


def test_unknown_specialty_in_a_menu_names_file_line_and_field(config_copy: Path) -> None:
    menus = config_copy / "menus.yaml"
    edit(menus, '"2": {specialty: tax-invoice}', '"2": {specialty: tax-invoices}')
    [error] = errors_of(config_copy)
    line = line_of(menus, "tax-invoices")
    assert error == (
        f"{menus}:{line}: menus.tax.options.2.specialty: unknown specialty 'tax-invoices'"
    )


def test_unknown_field_is_refused(config_copy: Path) -> None:
    line_yaml = config_copy / "line.yaml"
    edit(line_yaml, "  max_tries: 3", "  max_trys: 3")
    found = errors_of(config_copy)
    assert any(
        f"line.yaml:{line_of(line_yaml, 'max_trys')}: dialogue.max_trys: unknown field" in e
        for e in found
    )


def test_bad_time_and_bad_placeholder_and_missing_language(config_copy: Path) -> None:
    edit(config_copy / "line.yaml", 'close: "24:00"', 'close: "25:00"')
    edit(config_copy / "prompts.yaml", "正在为您转接{desk}专席", "正在为您转接{dsk}专席")
    edit(config_copy / "specialties.yaml", 'name: {zh: 商标, en: "Trademarks"}', "name: {zh: 商标}")
    found = "\n".join(errors_of(config_copy))
    assert "hours.close: Value error, expected a time HH:MM from 00:00 to 24:00" in found
    # The prompt error waits until the file-level errors are fixed; fix the hours and look.
    edit(config_copy / "line.yaml", 'close: "25:00"', 'close: "24:00"')
    found = "\n".join(errors_of(config_copy))
    assert "connecting.zh: unknown placeholder {dsk}; allowed: desk" in found
    assert "specialties.trademark.name: no text in language 'en'" in found


def test_menu_cross_checks(config_copy: Path) -> None:
    menus = config_copy / "menus.yaml"
    edit(
        menus,
        '"8": {describe: true}',
        '"8": {describe: true, menu: tax}\n      "9": {menu: nowhere}',
    )
    found = "\n".join(errors_of(config_copy))
    assert "menus.main.options.8: Value error, an option needs exactly one of" in found
    edit(menus, '"8": {describe: true, menu: tax}', '"8": {describe: true}')
    found = "\n".join(errors_of(config_copy))
    assert "menus.main.options.9.menu: unknown menu 'nowhere'" in found
    assert "menus.main.options.9: key 9 switches the language on the root menu" in found


def test_overflow_and_tiers_are_checked(config_copy: Path) -> None:
    specs = config_copy / "specialties.yaml"
    edit(specs, "queue: {size: 20, overflow: general}", "queue: {size: 20, overflow: nobody}")
    edit(config_copy / "tiers.yaml", "  unknown: 3-day\n", "")
    found = "\n".join(errors_of(config_copy))
    assert "tiers.yaml" in found and "missing: unknown" in found
    edit(config_copy / "tiers.yaml", "suggestion: 15-day", "suggestion: 15-day\n  unknown: 3-day")
    found = "\n".join(errors_of(config_copy))
    assert "specialties.business-registration.queue.overflow: unknown specialty 'nobody'" in found


def test_yaml_syntax_error_and_missing_file(config_copy: Path) -> None:
    (config_copy / "tiers.yaml").write_text("defaults:\n  request: [3-day\n", encoding="utf-8")
    (config_copy / "prompts.yaml").unlink()
    found = "\n".join(errors_of(config_copy))
    assert "prompts.yaml: (file): file is missing" in found
    assert "tiers.yaml:3: (file): not valid YAML" in found


def test_config_check_command(config_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(config_copy)]) == 0
    assert "ok (50 specialties, 8 menus" in capsys.readouterr().out
    edit(config_copy / "menus.yaml", "root: main", "root: mian")
    assert main(["config", "check", str(config_copy)]) == 1
    err = capsys.readouterr().err
    assert "root: unknown menu 'mian'" in err and "1 error(s)" in err
