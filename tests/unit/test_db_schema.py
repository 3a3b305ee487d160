"""The schema revision the code needs is migrations/'s head, and the decision on a stored one."""

from __future__ import annotations

import re

import pytest
from alembic.script import ScriptDirectory

from ethhook.db.schema import SCHEMA_REVISION, revision_problem
from tests.support.env import ROOT


def test_schema_revision_is_the_head_of_the_migrations() -> None:
    script = ScriptDirectory(str(ROOT / "migrations"))
    assert script.get_heads() == [SCHEMA_REVISION], (
        "a migration was added: set ethhook.db.schema.SCHEMA_REVISION to its revision"
    )


def test_revisions_are_numbered_in_order() -> None:
    """revision_problem compares revisions as numbers: every migration's id is four digits, one
    more than the one it revises."""
    script = ScriptDirectory(str(ROOT / "migrations"))
    for revision in script.walk_revisions():
        assert re.fullmatch(r"[0-9]{4}", revision.revision), revision.revision
        if revision.down_revision is not None:
            assert isinstance(revision.down_revision, str)
            assert int(revision.down_revision) < int(revision.revision), revision.revision


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ([SCHEMA_REVISION], None),
        (["0007"], f"the database schema is at 0007, this EthHook needs {SCHEMA_REVISION}"),
        (["0001"], f"the database schema is at 0001, this EthHook needs {SCHEMA_REVISION}"),
        # Newer than this code (a rolling upgrade migrated first), or not ours: left to run.
        (["9999"], None),
        (["ab12cd34"], None),
        ([], "has no EthHook schema"),
    ],
)
def test_revision_problem(stored: list[str], problem: str | None) -> None:
    found = revision_problem(stored, "sqlite:///x.db")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
