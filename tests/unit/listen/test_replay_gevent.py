"""listen.replay's node reads from greenlets: several at once in one gevent-patched process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import asyncio, threading, gevent
    from ethhook.exceptions import InputError
    from ethhook.listen.replay import _run

    async def read(n):
        await asyncio.sleep(0.2)
        if n == 3:
            raise InputError("block 3 is past the chain's head")
        return n

    def chunk(n):
        try:
            return _run(read(n))
        except InputError as exc:
            return str(exc)

    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(10)])
    jobs = [gevent.spawn(chunk, n) for n in range(4)]
    gevent.joinall(jobs + [ticker], raise_error=True)
    print([job.value for job in jobs], len(ticks))
    """
)


def test_reads_started_together_in_greenlets_each_get_their_loop():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # Every read finished (the error one raised in its own greenlet, nothing printed as a crash),
    # and the hub kept running other greenlets meanwhile.
    assert result.stdout.strip() == '[0, 1, 2, "block 3 is past the chain\'s head"] 10'
    assert "Traceback" not in result.stderr
