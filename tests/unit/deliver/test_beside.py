"""Work beside the requests: a greenlet under gevent, in line elsewhere; its error is never lost."""

import subprocess
import sys
import textwrap

import pytest

from ethhook.deliver.beside import Beside, green


def test_without_gevent_a_job_runs_in_line_and_its_error_is_raised_at_once():
    assert not green()
    done: list[int] = []
    beside = Beside()
    beside.start(lambda: done.append(1))
    assert done == [1]

    def fails() -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        beside.start(fails)
    beside.wait()  # nothing left running


GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import time
    from ethhook.deliver.beside import Beside, green

    assert green()
    log = []

    def slow(name, fail=False):
        def job():
            time.sleep(0.2)
            log.append(name)
            if fail:
                raise RuntimeError("write failed: " + name)
        return job

    beside = Beside()
    t = time.monotonic()
    beside.start(slow("first"))
    assert time.monotonic() - t < 0.1, "start waited for the job"
    log.append("task goes on")
    beside.start(slow("second", fail=True))  # waits for the first job only
    assert log == ["task goes on", "first"], log
    try:
        beside.wait()
    except RuntimeError as exc:
        print("raised:", exc)
    beside.wait()  # the error was raised once; nothing is left
    print("log:", log)
    """
)


def test_under_gevent_a_job_runs_beside_the_task_one_at_a_time_and_wait_raises_its_error():
    out = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "raised: write failed: second" in out.stdout
    assert "log: ['task goes on', 'first', 'second']" in out.stdout
