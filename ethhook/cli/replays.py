"""`ethhook replay`: start a replay job and watch its progress, show it, cancel it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ethhook.cli.common import Commands, add_command, non_negative_int, positive_int
from ethhook.cli.output import describe, emit
from ethhook.config import Settings
from ethhook.exceptions import EthHookError, InputError
from ethhook.service.public import to_public

if TYPE_CHECKING:
    from ethhook.replay.jobs import Replay

POLL_S = 0.5
PLAIN_EVERY_S = 5.0  # a progress line this often when the output is not a terminal
BAR_WIDTH = 30


def register(commands: Commands) -> None:
    replay = add_command(
        commands,
        "replay",
        cmd_replay,
        "re-read a block range from the chain and deliver it again (same webhook-ids), "
        "as a background job with progress",
    )
    replay.add_argument("--chain", metavar="ID_OR_NAME", help="chain id or name")
    replay.add_argument("--from-block", type=non_negative_int, metavar="A")
    replay.add_argument("--to-block", type=non_negative_int, metavar="B")
    replay.add_argument(
        "--endpoint",
        type=positive_int,
        default=None,
        metavar="ID",
        help="deliver to this endpoint only (default: every matching endpoint)",
    )
    replay.add_argument("--detach", action="store_true", help="print the job id and return at once")
    actions = replay.add_subparsers(dest="action", required=False, metavar="[ACTION]")
    status = add_command(actions, "status", cmd_replay_status, "show a replay job's progress")
    status.add_argument("id", type=positive_int, help="replay job id")
    cancel = add_command(actions, "cancel", cmd_replay_cancel, "stop a replay job")
    cancel.add_argument("id", type=positive_int, help="replay job id")


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = int(max(0.0, min(1.0, fraction)) * width)  # full only when done
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _summary(job: Replay) -> str:
    line = f"replay {job.id} {job.state}: {job.progress.line()}"
    if job.state == "done" and job.deliveries == 0:
        line += (
            "; nothing to send: no endpoint that takes replays matched"
            " (--live-only endpoints skip them)"
        )
    return line


def _job_data(job: Replay, settings: Settings) -> dict[str, Any]:
    return to_public(job.as_public(settings))


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.replay.jobs import create_replay
    from ethhook.replay.start import replay_chain
    from ethhook.workqueue import enqueue_replays

    if args.chain is None or args.from_block is None or args.to_block is None:
        raise InputError(
            "replay needs --chain, --from-block and --to-block "
            "(or `ethhook replay status ID`, `ethhook replay cancel ID`)"
        )
    chain_id = replay_chain(settings, args.chain, args.from_block, args.to_block)
    with session_scope() as session:
        job, dispatch = create_replay(
            session, settings, chain_id, args.from_block, args.to_block, args.endpoint, utcnow()
        )
    enqueue_replays([dispatch])
    if args.detach:
        emit(args, _job_data(job, settings), lambda: str(job.id))
        return 0
    return _watch(args, settings, job.id)


def _watch(args: argparse.Namespace, settings: Settings, job_id: int) -> int:
    """Follow the job until it ends; Ctrl-C leaves it running."""
    from ethhook.db import session_scope
    from ethhook.replay.jobs import get_replay

    out = sys.stderr if args.json else sys.stdout
    tty = out.isatty()
    if not args.json:
        print(f"replay {job_id} started; Ctrl-C leaves it running in the background", file=out)
    last_line = 0.0
    try:
        while True:
            with session_scope() as session:
                job = get_replay(session, job_id)
            if tty:
                _draw(out, job)
            elif job.finished or time.monotonic() - last_line >= PLAIN_EVERY_S:
                if not args.json:
                    print(_summary(job), file=out, flush=True)
                last_line = time.monotonic()
            if job.finished:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        print(
            f"\nreplay {job_id} keeps running in the background: `ethhook replay status "
            f"{job_id}` shows it, `ethhook replay cancel {job_id}` stops it",
            file=sys.stderr,
        )
        return 130
    return _finish(args, settings, job, tty, out)


def _draw(out: TextIO, job: Replay) -> None:
    line = f"\rreplay {job.id} {progress_bar(job.progress.fraction)} {job.progress.line()}"
    out.write(line + ("\n" if job.finished else ""))
    out.flush()


def _finish(args: argparse.Namespace, settings: Settings, job: Replay, tty: bool, out: Any) -> int:
    if args.json:
        emit(args, _job_data(job, settings), lambda: "")
    elif tty:
        print(_summary(job), file=out)
    if job.state == "failed":
        raise EthHookError(f"replay {job.id} failed: {job.error}")
    return 0 if job.state == "done" else 1


def cmd_replay_status(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.replay.jobs import get_replay

    with session_scope() as session:
        job = get_replay(session, args.id)
    data = _job_data(job, settings)

    def human() -> str:
        bar = f"{progress_bar(job.progress.fraction)} {job.progress.line()}"
        return describe({k: v for k, v in data.items()}) + "\n\n" + bar

    emit(args, data, human)
    return 0


def cmd_replay_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.replay.jobs import cancel_replay

    with session_scope() as session:
        job = cancel_replay(session, args.id, utcnow())
    emit(args, _job_data(job, settings), lambda: _summary(job))
    return 0
