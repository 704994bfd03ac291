"""The sample `[compliance]` configuration in docs/compliance.md is what the venue reads: its
two TOML blocks (the venue's table and the policy file) load, and every key takes effect."""

import re
import tomllib
from pathlib import Path

from perpetua.runtime import parse_config
from perpetua.services.jurisdictions import Location, parse_place

DOC = Path(__file__).parents[2] / "docs" / "compliance.md"


def _blocks() -> list[str]:
    section = DOC.read_text().split("## Configuration (a real venue)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```toml\n(.*?)```", section, re.S)


def test_the_documented_sample_is_read_as_written(tmp_path: Path) -> None:
    venue, policy = _blocks()
    (tmp_path / "policy.toml").write_text(policy)
    config = parse_config(tomllib.loads(venue), tmp_path).compliance
    assert config.kyc_required is True
    assert config.geoip_database == tmp_path / "GeoLite2-City.mmdb"
    assert [(s.path, s.format) for s in config.sanctions_lists] == [
        (tmp_path / "sdn.csv", "ofac-sdn"),
        (tmp_path / "internal.csv", "generic"),
    ]
    assert (config.name_match_threshold, config.document_validity_days) == (88, 730)
    assert (config.review_interval_days, config.sync_interval_s) == (365, 60.0)
    rules = config.policy
    assert rules.blocks("residence", parse_place("CA-QC"))
    assert not rules.blocks("residence", parse_place("CA-ON"))
    assert rules.blocks("citizenship", Location("IR"))
    assert not rules.blocks("citizenship", Location("HK"))
    assert rules.blocks("incorporation", Location("SC"))
    assert rules.denied_products([Location("GB")]) == 2 | 4  # Derivatives, TradFi
    assert rules.denied_products([Location("CA")]) == 4
