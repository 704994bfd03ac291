"""Compliance over real SQL (SQLite and PostgreSQL) and the real core: KYC levels and what each
allows, the review queue with four-eyes and its audit trail, restricted residence,
citizenship, incorporation and IP location, a per-product rule, sanctions hits at sign-up
(the application), on a list update and on a withdrawal address, periodic review, documents
(type by content, EXIF stripped, encrypted), export and erasure."""

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from PIL import Image
from sqlalchemy import func, select

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice, PlaceOrder, WithdrawalRequest
from perpetua.core.engine import Engine
from perpetua.core.enums import ExecInst, OrdType, RestrictionCause, Side, TradingMode
from perpetua.core.events import AccountRestricted, OrderEvent, Rejected
from perpetua.core.reasons import Reason
from perpetua.services.accounts import AccountsService
from perpetua.services.compliance import (
    DAY_NS,
    Compliance,
    ComplianceConfig,
    ComplianceError,
    CompliancePolicy,
    ListSource,
)
from perpetua.services.jurisdictions import DEFAULT, policy_of
from perpetua.store.schema import kyc_documents, kyc_profiles
from tests.gateway.fakes import InlineSequencer
from tests.services.conftest import Clock

ALICE = 1001
SDN_ROW = (
    '36,"DOE, John",individual,"SDGT",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,'
    '"DOB 01 Jan 1970; nationality Germany; Digital Currency Address - XBT '
    '1BadAddressXXXXXXXXXXXXXXXXXXXXXXX."\n'
)


def jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (32, 24), (200, 10, 10))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Maker"  # Make
    exif[0x0131] = "secret-software"  # Software
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(out, format="PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def person(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "individual",
        "level": 1,
        "name": "Alice Example",
        "dateOfBirth": "1990-05-17",
        "residence": "DE",
        "citizenship": ["DE"],
        "address": "Musterstrasse 1, Berlin",
        "occupation": "engineer",
    }
    data.update(changes)
    return data


def geoip_db(path: Path) -> Path:
    writer = MMDBWriter(ip_version=4, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["1.2.3.0/24"]), {"country": {"iso_code": "US"}})
    writer.insert_network(
        IPSet(["5.6.7.0/24"]),
        {"country": {"iso_code": "GB"}, "subdivisions": [{"iso_code": "ENG"}]},
    )
    writer.insert_network(IPSet(["4.4.4.0/24"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(
        IPSet(["9.9.9.0/24"]),
        {"country": {"iso_code": "CA"}, "subdivisions": [{"iso_code": "QC"}]},
    )
    writer.to_db_file(str(path))
    return path


class World:
    def __init__(self, compliance: Compliance, engine: Engine, clock: Clock) -> None:
        self.compliance = compliance
        self.engine = engine
        self.sequencer = compliance.submitter
        self.clock = clock

    def run(self, awaitable: Any) -> Any:
        return asyncio.run(awaitable)

    def apply(self, command: Any) -> list[Any]:
        assert isinstance(self.sequencer, InlineSequencer)
        return list(self.sequencer.execute(command).events)

    def restriction(self, account: int) -> Any:
        return self.engine.state.restrictions.get(account)

    def apply_for(self, user: int, level: int = 1, **changes: Any) -> dict[str, Any]:
        c = self.compliance
        self.run(c.save_application(user, person(level=level, **changes)))
        kinds = ["id_front", "id_back", "selfie"]
        if level == 2:
            kinds += ["proof_of_address", "source_of_funds"]
        if changes.get("kind") == "business":
            kinds.append("incorporation")
        for number, kind in enumerate(kinds):
            self.run(
                c.upload_document(user, kind, PDF + bytes([number, user % 256]), "", f"{kind}.pdf")
            )
        return dict(self.run(c.submit(user)))


@pytest.fixture
def world(accounts: AccountsService, clock: Clock, tmp_path: Path) -> Iterator[World]:
    accounts.create_user("alice@example.com", "a long test password", ALICE)
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    sdn = tmp_path / "sdn.csv"
    sdn.write_text(SDN_ROW)
    config = ComplianceConfig(
        kyc_required=True,
        geoip_database=geoip_db(tmp_path / "geo.mmdb"),
        sanctions_lists=(ListSource(sdn, "ofac-sdn"),),
    )
    compliance = Compliance(accounts.engine, accounts.server_key, sequencer, config, clock)
    yield World(compliance, engine, clock)
    compliance.close()


def _order(account: int, exec_inst: int = 0, symbol: str = "XBTUSD") -> PlaceOrder:
    return PlaceOrder(
        0, account, symbol, Side.BUY, 100, OrdType.LIMIT, price=190_000, exec_inst=exec_inst
    )


def _reasons(events: list[Any]) -> list[int]:
    return [e.reason for e in events if isinstance(e, Rejected)]


def test_each_level_allows_what_it_says(world: World) -> None:
    c = world.compliance
    assert world.run(c.sync_all()) == 1
    level0 = world.restriction(ALICE)
    assert (level0.trading, level0.deposits, level0.withdrawals, level0.cause) == (
        TradingMode.CLOSE_ONLY, False, False, RestrictionCause.KYC_REQUIRED,
    )  # fmt: skip
    assert _reasons(world.apply(Deposit(0, ALICE, "XBt", 10**8, "d0"))) == [
        Reason.DEPOSITS_NOT_PERMITTED
    ]
    assert world.run(c.daily_withdrawal_limit(ALICE, "XBt")) == 0
    assert world.run(c.sync_all()) == 0  # nothing changed: nothing submitted
    case = world.apply_for(ALICE, 1)
    assert case["risk"] == "normal"
    world.run(c.decide(case["caseId"], "rita", "approve", "documents match"))
    assert world.restriction(ALICE) is None
    assert world.run(c.kyc_level(ALICE)) == 1
    assert world.run(c.daily_withdrawal_limit(ALICE, "XBt")) == 2 * 10**8
    world.apply(IndexPrice(0, ".BXBT", 20_000, 1))
    assert _reasons(world.apply(Deposit(0, ALICE, "XBt", 10**8, "d1"))) == []
    assert _reasons(world.apply(_order(ALICE))) == []
    # level 2: enhanced (proof of address, source of funds), high risk: four-eyes
    world.run(c.save_application(ALICE, person(level=2, sourceOfFunds="salary")))
    for kind in ("proof_of_address", "source_of_funds"):
        world.run(c.upload_document(ALICE, kind, PDF + kind.encode(), "application/pdf", "x.pdf"))
    second = world.run(c.submit(ALICE))
    assert second["risk"] == "high"
    world.run(c.decide(second["caseId"], "rita", "approve", "address proven"))
    assert world.run(c.kyc_level(ALICE)) == 1  # one approval is not enough
    world.run(c.decide(second["caseId"], "sam", "approve", "funds explained"))
    assert world.run(c.kyc_level(ALICE)) == 2
    assert world.run(c.daily_withdrawal_limit(ALICE, "XBt")) == 100 * 10**8


def test_four_eyes_and_every_decision_audited(world: World) -> None:
    c = world.compliance
    owners = [{"name": "Bob Owner", "nationality": ["DE"]}]
    case = world.apply_for(
        ALICE, 1, kind="business", entityName="Example GmbH", incorporationCountry="DE",
        registrationNumber="HRB 1", beneficialOwners=owners,
    )  # fmt: skip
    assert case["risk"] == "high"
    case_id = case["caseId"]
    assert world.run(c.decide(case_id, "rita", "approve", "ok"))["status"] == "awaiting_second"
    with pytest.raises(ComplianceError) as same:
        world.run(c.decide(case_id, "rita", "approve", "ok again"))
    assert same.value.status == 409 and "Four-eyes" in same.value.message
    assert world.run(c.decide(case_id, "sam", "approve", "ok too"))["status"] == "approved"
    with pytest.raises(ComplianceError) as decided:
        world.run(c.decide(case_id, "tom", "reject", "late"))
    assert decided.value.status == 409
    trail = world.run(c.decisions(ALICE))
    assert [(d["reviewer"], d["decision"]) for d in trail] == [
        ("system", "opened"),
        ("rita", "approve_first"),
        ("sam", "approve"),
    ]
    assert all(d["timestamp"] > 0 and d["reason"] for d in trail)
    with pytest.raises(ComplianceError) as no_reason:
        world.run(c.decide(case_id, "tom", "reject", ""))
    assert no_reason.value.status == 400


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"residence": "US"}, "Residents of US"),
        ({"residence": "CA-QC"}, "Residents of CA-QC"),
        ({"residence": "UA-43"}, "Residents of UA-43"),
        ({"citizenship": ["DE", "IR"]}, "Citizens of IR"),
        (
            {"kind": "business", "entityName": "Shell Ltd", "incorporationCountry": "SC",
             "registrationNumber": "1", "beneficialOwners": [{"name": "O", "nationality": ["DE"]}]},
            "incorporated in SC",
        ),
        (
            {"kind": "business", "entityName": "Ok GmbH", "incorporationCountry": "DE",
             "registrationNumber": "1", "beneficialOwners": [{"name": "O", "nationality": ["KP"]}]},
            "Citizens of KP",
        ),
    ],
)  # fmt: skip
def test_restricted_jurisdictions_block_the_application(
    world: World, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComplianceError) as refused:
        world.run(world.compliance.save_application(ALICE, person(**changes)))
    assert refused.value.status == 403 and message in refused.value.message
    with world.compliance.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kyc_profiles)).scalar() == 0
    # a non-restricted province of the same country is fine
    world.run(world.compliance.save_application(ALICE, person(residence="CA-ON")))


def test_ip_location_blocks_and_a_mismatch_is_flagged(world: World) -> None:
    c = world.compliance
    for ip in ("1.2.3.4", "9.9.9.9"):  # United States; Québec
        with pytest.raises(ComplianceError) as refused:
            world.run(c.check_access(ip, None, "sign-up"))
        assert refused.value.status == 403
    world.run(c.check_access("127.0.0.1", None, "sign-in"))  # no location: allowed
    world.run(c.save_application(ALICE, person(residence="DE")))
    world.run(c.check_access("5.6.7.8", ALICE, "order"))  # GB, declared DE: flagged
    world.run(c.check_access("5.6.7.9", ALICE, "order"))  # same pair: flagged once, cached
    queue = world.run(c.queue())
    assert [(q["kind"], q["detail"]["mismatch"]) for q in queue] == [("location", "DE->GB")]
    assert c.geoip.lookups == 4  # one read per address, then the cache
    world.run(c.check_access("5.6.7.8", ALICE, "order"))
    assert c.geoip.lookups == 4


def test_per_product_rule(world: World) -> None:
    c = world.compliance
    c.config = ComplianceConfig(
        kyc_required=True,
        policy=policy_of({"residence": {"blocked": ["US"]}, "products": {"Derivatives": ["GB"]}}),
    )
    case = world.apply_for(ALICE, 1, residence="GB", citizenship=["GB"])
    world.run(c.decide(case["caseId"], "rita", "approve", "ok"))
    restriction = world.restriction(ALICE)
    assert restriction.trading == TradingMode.ALLOWED and restriction.products_denied == 2
    world.apply(Deposit(0, ALICE, "XBt", 10**8, "d"))
    world.apply(Deposit(0, ALICE, "USDt", 10**10, "u"))
    world.apply(IndexPrice(0, ".BXBT", 20_000, 1))
    assert _reasons(world.apply(_order(ALICE))) == [Reason.PRODUCT_NOT_PERMITTED]
    spot = PlaceOrder(0, ALICE, "XBT_USDT", Side.BUY, 100, OrdType.LIMIT, price=40_000)
    assert _reasons(world.apply(spot)) == []


def test_sanctions_hit_at_sign_up_on_list_update_and_on_an_address(
    world: World, tmp_path: Path
) -> None:
    c = world.compliance
    applicant = person(name="John Doe", dateOfBirth="1970-01-01", citizenship=["DE"])
    answer = world.run(c.save_application(ALICE, applicant))
    assert answer == {"saved": True, "screening": "review"}
    [hit_case] = world.run(c.queue())
    assert hit_case["kind"] == "sanctions" and hit_case["risk"] == "high"
    assert hit_case["detail"]["hits"][0]["name"] == "DOE, John"
    # a different birth year rules the entry out
    bob = 1002
    world.run(c.save_application(bob, person(name="John Doe", dateOfBirth="1985-03-03")))
    assert len(world.run(c.queue())) == 1
    # list update: a new entry naming Bob opens a case for him at the reload
    carol = 1003
    world.run(c.save_application(carol, person(name="Carol Clean")))
    generic = tmp_path / "extra.csv"
    generic.write_text("name,dob,nationality,addresses,id\nCarol Klean,,,0xAbC123,E1\n")
    c.config = ComplianceConfig(
        kyc_required=True,
        sanctions_lists=(*c.config.sanctions_lists, ListSource(generic, "generic")),
    )
    reloaded = world.run(c.reload_lists())
    assert reloaded["changed"] and reloaded["casesOpened"] == 1
    assert world.run(c.reload_lists())["changed"] is False  # unchanged files: nothing redone
    assert [q["account"] for q in world.run(c.queue())] == [ALICE, carol]
    # a withdrawal address (0x addresses compare case-insensitively)
    assert world.run(c.screen_withdrawal_address(bob, "0xabc123"))[0]["entryId"] == "E1"
    assert world.run(c.screen_withdrawal_address(bob, "0xdef456")) == []
    assert world.run(c.screen_withdrawal_address(bob, "1BadAddressXXXXXXXXXXXXXXXXXXXXXXX"))
    assert len([q for q in world.run(c.queue()) if q["account"] == bob]) == 2
    # a confirmed hit freezes the account in the core
    world.run(c.decide(hit_case["id"], "rita", "confirm", "same person: DOB and nationality"))
    frozen = world.restriction(ALICE)
    assert frozen.trading == TradingMode.FROZEN and frozen.cause == RestrictionCause.SANCTIONS
    assert _reasons(world.apply(WithdrawalRequest(0, ALICE, "XBt", 1, 0, "w"))) == [
        Reason.ACCOUNT_FROZEN
    ]


def _business(owners: list[dict[str, Any]], entity: str = "Clean Trading GmbH") -> dict[str, Any]:
    return person(
        kind="business", entityName=entity, incorporationCountry="DE",
        registrationNumber="HRB 1", beneficialOwners=owners,
    )  # fmt: skip


def _hits(case: dict[str, Any]) -> list[tuple[str, str]]:
    return [(h["subject"], h["entryId"]) for h in case["detail"]["hits"]]


def test_a_business_is_screened_as_an_entity_and_through_each_beneficial_owner(
    world: World, tmp_path: Path
) -> None:
    """Business KYC: the entity's name and every beneficial owner are screened, each hit
    naming whom it matched; on a list update too. A confirmed owner hit freezes the business
    account; clearing an entity hit takes two reviewers."""
    c = world.compliance
    entities = tmp_path / "entities.csv"
    entities.write_text(
        "name,dob,nationality,addresses,id,program\n"
        "Shady Holdings Ltd,,,,ENT-1,SDGT\n"
        "Boris Badguy,1965,Russia,,OWN-1,SDGT\n"
    )
    c.config = ComplianceConfig(
        kyc_required=True,
        sanctions_lists=(*c.config.sanctions_lists, ListSource(entities, "generic")),
    )
    assert world.run(c.reload_lists())["changed"]
    clean = {"name": "Clara Clean", "dateOfBirth": "1980-01-01", "nationality": ["DE"]}
    badguy = {"name": "Badguy, Boris", "dateOfBirth": "1965-07-01", "nationality": ["RU"]}
    answer = world.run(c.save_application(ALICE, _business([clean, badguy])))
    assert answer == {"saved": True, "screening": "review"}
    [owner_case] = world.run(c.queue())
    assert owner_case["kind"] == "sanctions" and owner_case["risk"] == "high"
    assert _hits(owner_case) == [("beneficialOwners[1]", "OWN-1")]
    bob, carol = 1002, 1003
    shady = _business([clean], entity="SHADY HOLDINGS, LTD.")
    assert world.run(c.save_application(bob, shady))["screening"] == "review"
    [entity_case] = [q for q in world.run(c.queue()) if q["account"] == bob]
    assert _hits(entity_case) == [("entity", "ENT-1")]
    assert world.run(c.save_application(carol, _business([clean])))["screening"] == "clear"
    # a confirmed owner hit freezes the business; clearing the entity hit takes four eyes
    world.run(c.decide(owner_case["id"], "rita", "confirm", "owner is the listed person"))
    assert world.restriction(ALICE).trading == TradingMode.FROZEN
    cleared = world.run(c.decide(entity_case["id"], "rita", "clear", "different registry"))
    assert cleared["status"] == "awaiting_second"
    assert world.run(c.decide(entity_case["id"], "sam", "clear", "checked"))["status"] == "cleared"
    assert world.restriction(bob).cause == RestrictionCause.KYC_REQUIRED  # not frozen
    # a list update naming an owner opens a case for every business she owns
    with entities.open("a") as more:
        more.write("Clara Klean,1980,Germany,,OWN-2,\n")
    assert world.run(c.reload_lists())["casesOpened"] == 2  # bob's and carol's; alice frozen
    update = [q for q in world.run(c.queue()) if q["detail"]["at"] == "list update"]
    assert sorted(q["account"] for q in update) == [bob, carol]
    assert all(_hits(q) == [("beneficialOwners[0]", "OWN-2")] for q in update)


def test_periodic_review_drops_an_overdue_account_to_close_only(world: World) -> None:
    c = world.compliance
    case = world.apply_for(ALICE, 1)
    world.run(c.decide(case["caseId"], "rita", "approve", "ok"))
    world.apply(Deposit(0, ALICE, "XBt", 10**8, "d"))
    world.apply(IndexPrice(0, ".BXBT", 20_000, 1))
    assert world.restriction(ALICE) is None
    world.clock.now_ns += (c.config.review_interval_days + 1) * DAY_NS
    assert world.run(c.sync_all()) == 1
    overdue = world.restriction(ALICE)
    assert overdue.trading == TradingMode.CLOSE_ONLY
    assert overdue.cause == RestrictionCause.KYC_REVIEW_OVERDUE
    assert _reasons(world.apply(_order(ALICE))) == [Reason.ACCOUNT_CLOSE_ONLY]
    assert _reasons(world.apply(_order(ALICE, ExecInst.REDUCE_ONLY))) == []
    assert [q["kind"] for q in world.run(c.queue())] == ["periodic"]
    assert world.run(c.sync_all()) == 0  # one case, one command


def test_expired_documents_drop_to_close_only_until_renewed_and_reviewed(world: World) -> None:
    """A required document past its validity puts an approved account close-only with a
    periodic case; the case cannot be approved on the expired documents (409: ask for more);
    fresh uploads supersede the expired copies, and the approval lifts the restriction."""
    c = world.compliance
    c.config = ComplianceConfig(kyc_required=True, review_interval_days=1_000)  # > validity
    case = world.apply_for(ALICE, 1)
    world.run(c.decide(case["caseId"], "rita", "approve", "ok"))
    assert world.restriction(ALICE) is None
    world.clock.now_ns += (c.config.document_validity_days + 1) * DAY_NS
    assert world.run(c.sync_all()) == 1
    lapsed = world.restriction(ALICE)
    assert (lapsed.trading, lapsed.cause) == (
        TradingMode.CLOSE_ONLY, RestrictionCause.KYC_REVIEW_OVERDUE,
    )  # fmt: skip
    status = world.run(c.status(ALICE))
    assert status["expiredDocuments"] == ["id_front", "id_back", "selfie"]
    [periodic] = world.run(c.queue())
    assert periodic["kind"] == "periodic"
    with pytest.raises(ComplianceError) as stale:
        world.run(c.decide(periodic["id"], "rita", "approve", "still fine"))
    assert stale.value.status == 409
    assert "Documents expired: id_front, id_back, selfie" in stale.value.message
    assert world.restriction(ALICE).trading == TradingMode.CLOSE_ONLY
    for kind in ("id_front", "id_back", "selfie"):
        world.run(c.upload_document(ALICE, kind, PDF + b"renewed " + kind.encode(), "", "n.pdf"))
    assert world.run(c.status(ALICE))["expiredDocuments"] == []
    assert world.run(c.sync_all()) == 0  # still close-only until a reviewer approves
    approved = world.run(c.decide(periodic["id"], "rita", "approve", "renewed passport"))
    assert approved["status"] == "approved"
    assert world.restriction(ALICE) is None
    assert world.run(c.sync_all()) == 0


def test_documents_checked_stripped_and_sealed(world: World) -> None:
    c = world.compliance
    world.run(c.save_application(ALICE, person()))
    photo = jpeg_with_exif()
    assert b"SpyCam Maker" in photo
    stored = world.run(c.upload_document(ALICE, "selfie", photo, "image/jpeg", "me.jpg"))
    with c.engine.connect() as conn:
        row = conn.execute(select(kyc_documents)).one()
    assert b"SpyCam" not in row.ciphertext and b"JFIF" not in row.ciphertext  # encrypted
    opened = world.run(c.document(stored["id"]))
    import base64

    clean = base64.b64decode(opened["data"])
    assert clean.startswith(b"\xff\xd8\xff") and b"SpyCam Maker" not in clean
    with Image.open(io.BytesIO(clean)) as image:
        assert not image.getexif()
    bad = [
        ("selfie", PDF, "image/png", "x.png", 415),  # declared type disagrees with the bytes
        ("selfie", b"GIF89a....", "", "x.gif", 415),
        ("selfie", b"\xff\xd8\xff\xe0 not really a jpeg", "", "x.jpg", 400),
        ("selfie", png(), "", "../../etc/passwd", 400),
        ("selfie", png(), "", "a/b.png", 400),
        ("passport_scan", png(), "", "p.png", 400),
        ("selfie", b"", "", "e.png", 400),
        ("selfie", b"%PDF-" + b"0" * (5 * 1024 * 1024), "", "big.pdf", 413),
        ("selfie", photo, "image/jpeg", "again.jpg", 409),  # the same picture twice
    ]
    for kind, data, declared, name, status in bad:
        with pytest.raises(ComplianceError) as refused:
            world.run(c.upload_document(ALICE, kind, data, declared, name))
        assert refused.value.status == status, (name, refused.value.message)
    with c.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kyc_documents)).scalar() == 1
    with pytest.raises(ComplianceError) as missing:
        world.run(c.submit(ALICE))
    assert missing.value.status == 400 and "id_front" in missing.value.message
    world.apply_for(ALICE, 1)
    with pytest.raises(ComplianceError) as twice:
        world.run(c.submit(ALICE))
    assert twice.value.status == 409


def test_export_and_erase_keep_the_decisions(world: World) -> None:
    c = world.compliance
    case = world.apply_for(ALICE, 1)
    world.run(c.decide(case["caseId"], "rita", "approve", "ok"))
    exported = world.run(c.export(ALICE))
    assert exported["profile"]["application"]["name"] == "Alice Example"
    assert len(exported["documents"]) == 3 and exported["decisions"]
    erased = world.run(c.erase(ALICE, "dpo"))
    assert erased == {"account": ALICE, "erased": True, "documents": 3}
    after = world.run(c.export(ALICE))
    assert after["profile"] is None and after["documents"] == []
    assert all(d["detail"] is None for d in after["decisions"])
    assert [d["decision"] for d in after["decisions"]] == ["opened", "approve", "erased"]
    # erased: level 0 again, so restricted again
    assert world.restriction(ALICE).cause == RestrictionCause.KYC_REQUIRED


def test_default_policy_is_bitmex_list() -> None:
    for code in ("US", "CA-QC", "CU", "UA-43", "UA-40", "IR", "SY", "KP", "SD", "UA-14",
                 "UA-09", "UA-65", "UA-23", "BM", "HK", "SC"):  # fmt: skip
        assert code in DEFAULT.blocked["residence"]
        assert code in DEFAULT.blocked["ip"]


def test_restriction_events_come_from_the_core(world: World) -> None:
    events = world.apply(Deposit(0, ALICE, "XBt", 1, "x"))
    assert not any(isinstance(e, AccountRestricted | OrderEvent) for e in events)


def test_the_wallets_withdrawal_policy(world: World) -> None:
    c = world.compliance
    policy = CompliancePolicy(c)  # services.wallets.WithdrawalPolicy
    bad = "1BadAddressXXXXXXXXXXXXXXXXXXXXXXX"
    refused = policy.check(ALICE, "XBt", "bitcoin", "0xfine", 1)
    assert not refused.allowed and "KYC level 1" in refused.reason  # level 0, KYC required
    assert policy.daily_limit(ALICE, "XBt") == 0 and not policy.deposits_allowed(ALICE)
    case = world.apply_for(ALICE, 1)
    world.run(c.decide(case["caseId"], "rita", "approve", "ok"))
    assert policy.check(ALICE, "XBt", "bitcoin", "0xfine", 1).allowed
    assert policy.daily_limit(ALICE, "XBt") == 2 * 10**8 and policy.deposits_allowed(ALICE)
    hit = policy.check(ALICE, "XBt", "bitcoin", bad, 1)
    assert not hit.allowed and hit.reason == "This address cannot receive withdrawals"
    [opened] = world.run(c.queue())
    assert opened["kind"] == "sanctions" and opened["detail"]["address"] == bad


def test_operator_restrictions_merge_with_compliance_and_survive_the_sync(world: World) -> None:
    """Rule 1a: the operator's restriction is kept apart and merged with what the records
    imply (stricter mode, every denial, a permission only if both give it); no sync weakens
    it, and lifting it leaves compliance's."""
    from perpetua.core.commands import SetAccountRestriction

    c = world.compliance
    case = world.apply_for(ALICE, 1)
    world.run(c.decide(case["caseId"], "rita", "approve", "ok"))
    assert world.restriction(ALICE) is None
    no_withdrawals = SetAccountRestriction(
        0, ALICE, TradingMode.ALLOWED, withdrawals=False, cause=RestrictionCause.OPERATOR
    )
    world.run(c.operator_restriction(no_withdrawals))
    held = world.restriction(ALICE)
    assert (held.trading, held.withdrawals, held.cause) == (
        TradingMode.ALLOWED, False, RestrictionCause.OPERATOR,
    )  # fmt: skip
    assert world.run(c.sync_all()) == 0
    world.clock.now_ns += (c.config.review_interval_days + 1) * DAY_NS  # review overdue
    assert world.run(c.sync_all()) == 1
    merged = world.restriction(ALICE)
    assert (merged.trading, merged.deposits, merged.withdrawals, merged.cause) == (
        TradingMode.CLOSE_ONLY, False, False, RestrictionCause.KYC_REVIEW_OVERDUE,
    )  # fmt: skip  # overdue allows withdrawals; the operator's rule still refuses them
    world.run(c.operator_restriction(SetAccountRestriction(0, ALICE, TradingMode.ALLOWED)))
    lifted = world.restriction(ALICE)
    assert (lifted.trading, lifted.withdrawals, lifted.cause) == (
        TradingMode.CLOSE_ONLY, True, RestrictionCause.KYC_REVIEW_OVERDUE,
    )  # fmt: skip
    assert world.run(c.sync_all()) == 0
    # an account no user owns: the operator's restriction alone
    world.run(c.operator_restriction(SetAccountRestriction(0, 4242, TradingMode.FROZEN)))
    assert world.restriction(4242).trading == TradingMode.FROZEN


class _Liveness:
    """A third-party liveness check behind the provider port: it sees the decrypted selfie
    and ID and says the faces differ, or fails outright."""

    name = "liveness"

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.seen: list[tuple[int, str, list[str]]] = []

    def check(self, case_id: int, application: Any, documents: Any) -> Any:
        from perpetua.services.kyc_providers import Finding

        if self.broken:
            raise ConnectionError("provider down")
        self.seen.append((case_id, application["name"], sorted(d.kind for d in documents)))
        assert all(d.data.startswith(b"%PDF") for d in documents)  # decrypted for the check
        return Finding("fail", "selfie does not match id_front", "chk_123")


def test_an_identity_provider_advises_and_reviewers_decide(world: World) -> None:
    """services.kyc_providers: the built-in manual review records nothing; a provider's
    finding joins the audit trail as advice, the case stays in the queue for reviewers; a
    provider that fails loses nothing."""
    c = world.compliance
    assert c.config.provider.name == "manual"
    manual = world.apply_for(ALICE, 1)
    assert [d["reviewer"] for d in world.run(c.decisions(ALICE))] == ["system"]
    world.run(c.decide(manual["caseId"], "rita", "reject", "blurred"))
    liveness = _Liveness()
    c.config = ComplianceConfig(kyc_required=True, provider=liveness)
    bob = 1002
    case = world.apply_for(bob, 1)
    assert liveness.seen == [(case["caseId"], "Alice Example", ["id_back", "id_front", "selfie"])]
    trail = [(d["reviewer"], d["decision"], d["reason"]) for d in world.run(c.decisions(bob))]
    assert trail == [
        ("system", "opened", trail[0][2]),
        ("provider:liveness", "finding_fail", "selfie does not match id_front"),
    ]
    assert [q["id"] for q in world.run(c.queue())] == [case["caseId"]]  # still for reviewers
    assert world.run(c.kyc_level(bob)) == 0
    world.run(c.decide(case["caseId"], "rita", "reject", "provider's finding confirmed"))
    c.config = ComplianceConfig(kyc_required=True, provider=_Liveness(broken=True))
    carol = 1003
    down = world.apply_for(carol, 1)
    assert [q["id"] for q in world.run(c.queue())] == [down["caseId"]]
