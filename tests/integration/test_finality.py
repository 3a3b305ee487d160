"""Finality by chain tag and lifecycle endpoints against PostgreSQL: what `endpoint add/update`
refuse (one line each), the rows the matcher makes, beat's release by the stored tag (never past
the verified cursor), and a reorg's cancellations and `event.removed`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import ChainCursor, Delivery, DeliveryStatus, EventKind, utcnow
from ethhook.listen.store import save_tags
from ethhook.listen.tags import TagState
from ethhook.maintenance.jobs import release_confirmed
from ethhook.workqueue import orphan_blocks, store_events
from tests.support.cli import assert_refused, ethhook
from tests.support.db import endpoint_count, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, h32, transfer

pytestmark = pytest.mark.usefixtures("db", "without_session_worker")

URL = "https://hooks.example.com/eth"
CONTRACT = address(7)


def refused(*args: str) -> str:
    before = endpoint_count()
    line = assert_refused(ethhook(*args))
    assert endpoint_count() == before
    return line


def test_a_finality_that_is_not_one_of_the_three_is_refused_in_one_line():
    assert refused("endpoint", "add", "--url", URL, "--finality", "soon") == (
        "ethhook: error: invalid --finality 'soon': expected latest, safe or finalized"
    )
    assert refused("endpoint", "add", "--url", URL, "--finality", "FINALIZED") == (
        "ethhook: error: invalid --finality 'FINALIZED': expected latest, safe or finalized"
    )


def test_confirmations_beside_a_chain_tag_are_refused_in_one_line():
    line = refused(
        "endpoint", "add", "--url", URL, "--finality", "finalized", "--confirmations", "3"
    )
    assert line == (
        "ethhook: error: --finality finalized and --confirmations 3 do not go together: a safe "
        "or finalized endpoint is confirmed by its chain's tag, confirmations apply to "
        "--finality latest only (give --confirmations 0)"
    )
    # An update is held to the same rule with what it keeps: a 2-confirmation endpoint does not
    # become safe unless its confirmations go to 0 in the same update.
    made = json.loads(
        ethhook("endpoint", "add", "--url", URL, "--confirmations", "2", "--json").stdout
    )
    eid = str(made["id"])
    line = assert_refused(ethhook("endpoint", "update", eid, "--finality", "safe"))
    assert line.startswith("ethhook: error: --finality safe and --confirmations 2 do not go")
    changed = ethhook(
        "endpoint", "update", eid, "--finality", "safe", "--confirmations", "0", "--json"
    )
    assert changed.returncode == 0, changed.stderr
    assert (
        json.loads(changed.stdout)["finality"],
        json.loads(changed.stdout)["confirmations"],
    ) == (
        "safe",
        0,
    )
    line = assert_refused(ethhook("endpoint", "update", eid, "--confirmations", "4"))
    assert line.startswith("ethhook: error: --finality safe and --confirmations 4 do not go")


def test_a_tag_on_a_chain_whose_node_lacks_it_is_refused_and_an_unknown_chain_accepted():
    # Given the listener found that chain 1's node does not answer the tags (chain 10: not asked)
    save_tags(1, TagState(False))
    line = refused("endpoint", "add", "--url", URL, "--chain", "1", "--finality", "finalized")
    assert line == (
        'ethhook: error: --finality finalized: the node of chain 1 does not answer the "finalized" '
        "block tag (the listener asked it); use --finality latest with --confirmations N there"
    )
    # An endpoint for every chain includes chain 1
    assert refused("endpoint", "add", "--url", URL, "--finality", "safe").startswith(
        "ethhook: error: --finality safe: the node of chain 1 does not answer"
    )
    # latest is fine there; a chain not asked yet takes a tag (its deliveries wait for it)
    ok = ethhook("endpoint", "add", "--url", URL, "--chain", "1", "--json")
    assert ok.returncode == 0, ok.stderr
    elsewhere = ethhook(
        "endpoint", "add", "--url", URL, "--chain", "10", "--finality", "safe", "--json"
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    # An update that moves a safe endpoint onto chain 1, or a chain-1 endpoint to a tag: refused
    moved = ethhook("endpoint", "update", str(json.loads(elsewhere.stdout)["id"]), "--chain", "1")
    assert assert_refused(moved).startswith("ethhook: error: --finality safe: the node of chain 1")
    tagged = ethhook("endpoint", "update", str(json.loads(ok.stdout)["id"]), "--finality", "safe")
    assert assert_refused(tagged).startswith("ethhook: error: --finality safe: the node of chain 1")
    # A node that answers them is fine
    save_tags(1, TagState(True, safe=68, finalized=36))
    again = ethhook("endpoint", "add", "--url", URL, "--chain", "1", "--finality", "finalized")
    assert again.returncode == 0, again.stderr


def test_show_and_list_carry_finality_and_lifecycle():
    made = ethhook(
        "endpoint", "add", "--url", URL, "--finality", "finalized", "--lifecycle", "--json"
    )  # fmt: skip
    data = json.loads(made.stdout)
    assert (data["finality"], data["lifecycle"], data["confirmations"]) == ("finalized", True, 0)
    shown = json.loads(ethhook("endpoint", "show", str(data["id"]), "--json").stdout)
    assert (shown["finality"], shown["lifecycle"]) == ("finalized", True)
    human = ethhook("endpoint", "show", str(data["id"])).stdout
    assert "finality" in human and "lifecycle" in human
    plain = json.loads(ethhook("endpoint", "add", "--url", URL, "--json").stdout)
    assert (plain["finality"], plain["lifecycle"]) == ("latest", False)
    off = ethhook("endpoint", "update", str(data["id"]), "--no-lifecycle", "--json")
    assert json.loads(off.stdout)["lifecycle"] is False
    listed = ethhook("endpoint", "list").stdout.splitlines()
    assert listed[1].split()[2] == "finalized" and listed[2].split()[2] == "0"


def rows() -> list[tuple[int, str, str, str, int | None, str | None, int | None]]:
    with session_scope() as session:
        found = session.execute(
            select(
                Delivery.endpoint_id,
                Delivery.event_id,
                Delivery.kind,
                Delivery.status,
                Delivery.release_block,
                Delivery.release_tag,
                Delivery.sequence,
            ).order_by(Delivery.endpoint_id, Delivery.id)
        )
        return [tuple(r) for r in found]  # type: ignore[misc]


def cursor_at(block: int) -> None:
    with session_scope() as session:
        session.merge(
            ChainCursor(
                chain_id=1, block_number=block, block_hash=h32("b", block), head_number=block
            )
        )


def test_tag_final_deliveries_are_released_by_the_stored_tag_up_to_the_cursor_only():
    final = add_endpoint(URL, contracts=[CONTRACT], finality="finalized")[0]
    safe = add_endpoint(URL, contracts=[CONTRACT], finality="safe")[0]
    life = add_endpoint(URL, contracts=[CONTRACT], lifecycle=True, confirmations=2)[0]
    event = transfer(contract=CONTRACT, block=10, log_index=0, value=1)
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
    e = event.event_id
    waiting, pending = DeliveryStatus.WAITING, DeliveryStatus.PENDING
    assert rows() == [
        (final, e, EventKind.CONFIRMED, waiting, 10, "finalized", None),
        (safe, e, EventKind.CONFIRMED, waiting, 10, "safe", None),
        (life, e, EventKind.INSTANT, pending, None, None, 1),
        (life, e, EventKind.CONFIRMED, waiting, 12, None, None),
    ]
    # No tags stored yet: the cursor alone releases nothing tag-final.
    cursor_at(12)
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 1  # the lifecycle's confirmed
    # Tags above the cursor count only up to it: safe at 30, finalized at 9, cursor at 12.
    save_tags(1, TagState(True, safe=30, finalized=9))
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 1
    cursor_at(9)
    save_tags(1, TagState(True, safe=30, finalized=30))
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 0  # the cursor (9) is below block 10
    cursor_at(40)
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 1
    assert rows() == [
        (final, e, EventKind.CONFIRMED, pending, 10, "finalized", 1),
        (safe, e, EventKind.CONFIRMED, pending, 10, "safe", 1),
        (life, e, EventKind.INSTANT, pending, None, None, 1),
        (life, e, EventKind.CONFIRMED, pending, 12, None, 2),
    ]


def test_a_reorg_cancels_waiting_tag_final_deliveries_and_tells_a_lifecycle_endpoint_once():
    final = add_endpoint(URL, contracts=[CONTRACT], finality="finalized")[0]
    life = add_endpoint(URL, contracts=[CONTRACT], lifecycle=True, finality="safe")[0]
    event = transfer(contract=CONTRACT, block=10, log_index=0, value=1)
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
    with session_scope() as session:
        orphan_blocks(session, 1, [event.block_hash])
    e = event.event_id
    cancelled, pending = DeliveryStatus.CANCELLED, DeliveryStatus.PENDING
    assert rows() == [
        (final, e, EventKind.CONFIRMED, cancelled, 10, "finalized", None),
        (life, e, EventKind.INSTANT, pending, None, None, 1),
        (life, e, EventKind.CONFIRMED, cancelled, 10, "safe", None),
        (life, e, EventKind.REMOVED, pending, None, None, 2),
    ]
    # The removal was sent; when the block is canonical again, the lifecycle endpoint's confirmed
    # stays cancelled (no confirmed after a removed), the other one waits again.
    with session_scope() as session:
        session.execute(
            Delivery.__table__.update()
            .where(Delivery.kind == EventKind.REMOVED)
            .values(status=DeliveryStatus.SUCCEEDED, attempts=1)
        )
    with session_scope() as session:
        store_events(session, [event], utcnow())
    statuses = {(r[0], r[2]): r[3] for r in rows()}
    assert statuses[(final, EventKind.CONFIRMED)] == DeliveryStatus.WAITING
    assert statuses[(life, EventKind.CONFIRMED)] == cancelled


def test_a_lifecycle_endpoint_told_of_a_removal_after_its_confirmed_gets_one_removed():
    life = add_endpoint(URL, contracts=[CONTRACT], lifecycle=True)[0]
    event = transfer(contract=CONTRACT, block=10, log_index=0, value=1)
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
    cursor_at(10)
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 1  # latest, 0 confirmations: at once
        orphan_blocks(session, 1, [event.block_hash])
    kinds = [(r[2], r[6]) for r in rows() if r[0] == life]
    assert kinds == [
        (EventKind.INSTANT, 1),
        (EventKind.CONFIRMED, 2),
        (EventKind.REMOVED, 3),
    ]


def test_a_replay_sends_tag_final_events_by_the_stored_tag_and_lifecycle_ones_as_both_kinds():
    from ethhook.match.replay import redeliver

    final = add_endpoint(URL, contracts=[CONTRACT], finality="finalized")[0]
    life = add_endpoint(URL, contracts=[CONTRACT], lifecycle=True, confirmations=5)[0]
    events = [transfer(contract=CONTRACT, block=b, log_index=0, value=b) for b in (10, 20)]
    save_tags(1, TagState(True, safe=18, finalized=15))
    with session_scope() as session:
        redeliver(session, events, head=22, now=utcnow())
    e10, e20 = (e.event_id for e in events)
    waiting, pending = DeliveryStatus.WAITING, DeliveryStatus.PENDING
    found = [(r[0], r[1], r[2], r[3], r[5]) for r in rows()]
    assert sorted(found) == sorted(
        [
            (final, e10, EventKind.CONFIRMED, pending, "finalized"),  # 10 <= finalized 15
            (final, e20, EventKind.CONFIRMED, waiting, "finalized"),  # 20 > 15: beat's, later
            (life, e10, EventKind.INSTANT, pending, None),
            (life, e10, EventKind.CONFIRMED, pending, None),  # 10 + 5 <= 22
            (life, e20, EventKind.INSTANT, pending, None),
            (life, e20, EventKind.CONFIRMED, waiting, None),  # 20 + 5 > 22
        ]
    )


def test_coverage_of_a_tag_final_endpoint_is_confirmed_up_to_the_stored_tag():
    made = ethhook("endpoint", "add", "--url", URL, "--chain", "1", "--finality", "safe", "--json")
    eid = str(json.loads(made.stdout)["id"])
    cursor_at(40)

    def confirmed_to() -> int | None:
        covered = json.loads(ethhook("endpoint", "coverage", eid, "--json").stdout)
        (chain,) = covered["chains"]
        assert chain["scanned_to"] == 40
        return chain["confirmed_to"]

    assert confirmed_to() is None  # the tag is not known yet
    save_tags(1, TagState(True, safe=30, finalized=10))
    assert confirmed_to() == 30
    save_tags(1, TagState(True, safe=55, finalized=10))
    assert confirmed_to() == 40  # never past what was scanned
