"""Endpoints for tests: one registered in-process as the CLI registers it, or thousands in bulk SQL."""

from __future__ import annotations

from typing import Any

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.service.endpoints import create_endpoint
from ethhook.service.scope import OPERATOR
from ethhook.service.validation import build_spec

SCHEDULE = "0,1,1"  # three attempts, a second apart: a test sees every attempt of a failing one


def add_endpoint(url: str, **kw: Any) -> tuple[int, str]:
    """Register an endpoint in-process (in `application_id`, default `default`); returns
    (id, what verifies its webhooks: the secret, or an ed25519 endpoint's public key)."""
    spec = build_spec(
        url=url,
        chains=kw.get("chains", []),
        contracts=kw.get("contracts", []),
        events=kw.get("events", []),
        confirmations=kw.get("confirmations", 0),
        rate_limit_per_s=kw.get("rate_limit_per_s"),
        retry_schedule=kw.get("retry_schedule"),
        name=kw.get("name"),
        settings=get_settings(),
        where=kw.get("where", ()),
        signing=kw.get("signing", "hmac"),
        finality=kw.get("finality", "latest"),
        lifecycle=kw.get("lifecycle", False),
        ordered=kw.get("ordered"),
    )
    with session_scope() as session:
        created = create_endpoint(
            session, spec, scope=OPERATOR, application_id=kw.get("application_id")
        )
        verifier = created.secret or created.endpoint.public_key
        assert verifier is not None
        return created.endpoint.id, verifier


def watched_address(n: int) -> str:
    """The address endpoint n of `seed_keyed_endpoints` watches (lowercase)."""
    return "0x" + f"{n:040x}"


def seed_keyed_endpoints(first: int, last: int, token: str, signature: str) -> None:
    """Endpoints first..last in bulk SQL (PostgreSQL), each `to == watched_address(id)` on
    `token`'s Transfers, stored as registration stores them (conditions, keyed filter row, topic
    key); then ANALYZE. Endpoint ids are set explicitly: the sequence is moved past them."""
    from sqlalchemy import text

    from ethhook.abi import parse_event_signature
    from ethhook.db import get_engine

    series = {"a": first, "b": last}
    with get_engine().begin() as conn:
        # Without the foreign keys' checks (one query a row, half the time): every row
        # refers to one made just before it, and the tables have no trigger of their own.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text(
                "INSERT INTO endpoints (id, application_id, url, secret, event_signatures,"
                " conditions, confirmations, active, created_at, updated_at)"
                " SELECT g, (SELECT id FROM applications WHERE name = 'default'),"
                " 'http://127.0.0.1:9/w' || g, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',"
                " json_build_array(CAST(:sig AS text)),"
                " json_build_array('to == 0x' || lpad(to_hex(g), 40, '0')), 0, true, now(), now()"
                " FROM generate_series(:a, :b) g"
            ),
            {**series, "sig": signature},
        )
        conn.execute(
            text(
                "INSERT INTO endpoint_filters (endpoint_id, chain_id, address, topic0, keyed)"
                " SELECT g, 1, :token, :topic0, true FROM generate_series(:a, :b) g"
            ),
            {**series, "token": token, "topic0": parse_event_signature(signature).topic0},
        )
        conn.execute(
            text(
                "INSERT INTO endpoint_topic_keys (endpoint_id, position, value)"
                " SELECT g, 2, '0x' || lpad(to_hex(g), 64, '0') FROM generate_series(:a, :b) g"
            ),
            series,
        )
        conn.execute(
            text(
                "SELECT setval('endpoints_id_seq', GREATEST(:b, (SELECT max(id) FROM endpoints)))"
            ),
            series,
        )
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("endpoints", "endpoint_filters", "endpoint_topic_keys"):
            conn.execute(text(f"ANALYZE {table}"))
