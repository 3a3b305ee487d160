"""The `ethhook` parser: the command tree each module registers, and what each command accepts."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from ethhook.cli import COMMAND_MODULES, build_parser, deliveries, endpoints, named_command, replays
from ethhook.cli.common import Schema
from ethhook.db.models import DeliveryStatus


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _command(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        parser = _commands(parser)[name]
    return parser


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


@pytest.mark.parametrize("module", list(COMMAND_MODULES))
def test_a_command_line_naming_a_command_builds_its_modules_commands_only(module):
    for name in COMMAND_MODULES[module]:
        assert list(_commands(build_parser(name))) == list(COMMAND_MODULES[module])
        assert _commands(build_parser(name))[name].format_help() == _command(name).format_help()


def test_the_command_a_line_names_is_its_first_word_unless_an_option():
    assert named_command(["listen"]) == "listen"
    assert named_command(["--help"]) is None  # `ethhook --help`: every command
    assert named_command(["--help", "listen"]) is None
    assert named_command([]) is None
    assert named_command(["endpoint", "list", "--json"]) == "endpoint"
    assert list(_commands(build_parser("no-such-command"))) == list(_commands(build_parser()))


def test_ethhook_listen_loads_no_other_commands_code():
    probe = (
        "import sys; from ethhook.cli import build_parser; build_parser('listen'); "
        "print(sorted(m for m in sys.modules if m.startswith('ethhook.cli.')), "
        "'pydantic' in sys.modules, 'ethhook.service.endpoints' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "['ethhook.cli.common', 'ethhook.cli.processes'] False False"


def test_the_commands_are_listed_in_their_order():
    top = _commands(build_parser())
    assert list(top) == [
        "db",
        "endpoint",
        "app",
        "delivery",
        "explain",
        "replay",
        "stats",
        "api",
        "listen",
        "up",
        "demo",
    ]
    assert list(top) == [name for names in COMMAND_MODULES.values() for name in names]
    db = ["upgrade", "reencrypt", "new-key", "retention", "partitions"]
    assert list(_commands(top["db"])) == db
    assert list(_commands(top["endpoint"])) == [
        "add",
        "update",
        "list",
        "show",
        "coverage",
        "secret",
        "disable",
        "enable",
        "rotate-secret",
        "delete",
    ]
    assert list(_commands(top["delivery"])) == ["list", "retry", "show"]
    assert list(_commands(top["app"])) == [
        "add",
        "list",
        "show",
        "rotate-key",
        "delete",
        "operator-key",
        "ops-endpoint",
    ]
    assert list(_commands(top["replay"])) == ["status", "cancel"]


def test_every_command_runs_a_handler_and_takes_json():
    def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...]):
        subs = _commands(parser)
        if not subs or path == ("replay",):  # `replay` runs a job itself, or one of its actions
            yield path, parser
        for name, sub in subs.items():
            yield from leaves(sub, (*path, name))

    found = list(leaves(build_parser(), ()))
    assert len(found) == 34
    for path, parser in found:
        assert callable(parser.get_default("func")), path
        assert _option(parser, "--json").default is False, path


def test_what_each_command_needs_of_the_database_schema():
    # The commands that make the schema, or need no database, are not checked.
    for path in (("db", "upgrade"), ("db", "new-key"), ("demo",)):
        assert _command(*path).get_default("schema") is Schema.NONE, path
    # The processes start while the database is down (and report it their own way).
    for path in (("listen",), ("api",), ("up",)):
        assert _command(*path).get_default("schema") is Schema.IF_REACHABLE, path
    for path in (("endpoint", "list"), ("db", "reencrypt"), ("delivery", "retry"), ("stats",)):
        assert _command(*path).get_default("schema") is Schema.REQUIRED, path


@pytest.mark.parametrize("action", ["list", "retry"])
def test_the_status_choices_are_the_models_statuses(action):
    choices = _option(_command("delivery", action), "--status").choices
    assert choices is not None and tuple(choices) == DeliveryStatus.ALL


def test_delivery_filters_parse_into_the_handler_arguments():
    args = build_parser().parse_args(
        ["delivery", "retry", "--status", "failed", "--endpoint", "4", "--since", "2026-11-27"]
    )
    assert args.func is deliveries.cmd_delivery_retry
    assert (args.ids, args.status, args.endpoint, args.since) == ([], "failed", 4, "2026-11-27")


def test_replay_starts_a_job_or_runs_an_action_on_one():
    parse = build_parser().parse_args
    start = parse(["replay", "--chain", "1", "--from-block", "5", "--to-block", "9", "--detach"])
    status = parse(["replay", "status", "7", "--json"])
    cancel = parse(["replay", "cancel", "7"])
    assert (start.func, start.action, start.from_block, start.to_block, start.detach) == (
        replays.cmd_replay,
        None,
        5,
        9,
        True,
    )
    assert (status.func, status.id, status.json) == (replays.cmd_replay_status, 7, True)
    assert (cancel.func, cancel.id) == (replays.cmd_replay_cancel, 7)


def test_only_disable_takes_a_reason_and_only_rotate_secret_a_grace():
    parse = build_parser().parse_args
    disable = parse(["endpoint", "disable", "3", "--reason", "gone"])
    rotate = parse(["endpoint", "rotate-secret", "3", "--grace-s", "60"])
    enable = parse(["endpoint", "enable", "3"])
    assert (disable.func, disable.id, disable.reason) == (endpoints.cmd_endpoint_disable, 3, "gone")
    assert (rotate.func, rotate.id, rotate.grace_s) == (endpoints.cmd_endpoint_rotate, 3, 60.0)
    assert enable.func is endpoints.cmd_endpoint_enable
    assert not hasattr(enable, "reason") and not hasattr(enable, "grace_s")


def test_an_option_of_another_command_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["endpoint", "enable", "3", "--reason", "x"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "ethhook: error: unrecognized arguments: --reason x (see --help)\n"
    )


def test_a_status_outside_the_model_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["delivery", "list", "--status", "lost"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "ethhook delivery list: error: argument --status: invalid choice: 'lost' (choose from "
        "'waiting', 'pending', 'succeeded', 'failed', 'cancelled', 'discarded') (see --help)\n"
    )


def test_explain_needs_a_chain_and_a_transaction():
    parser = _command("explain")
    assert _option(parser, "--chain").required and _option(parser, "--tx").required
    assert parser.get_default("schema") is Schema.REQUIRED
