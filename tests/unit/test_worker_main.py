"""`ethhook-worker`: the celery worker command without other packages' subcommands, nor the
`celery amqp` shell."""

from __future__ import annotations

import subprocess
import sys

from tests.support.env import BIN

PROBE = (
    "import sys; {setup}; "
    "print('flower' in sys.modules, 'tornado' in sys.modules, 'prompt_toolkit' in sys.modules)"
)


def run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def test_the_celery_command_loads_flower_and_a_shell_and_ethhook_worker_does_not():
    assert run(PROBE.format(setup="import celery.bin.celery")) == "True True True"
    without = "from ethhook.worker_main import _celery_main_without_command_plugins as f; f()"
    assert run(PROBE.format(setup=without)) == "False False False"


def test_the_amqp_shell_imported_after_the_worker_command_is_celerys_own():
    probe = (
        "from ethhook.worker_main import prepare; prepare(['-P', 'solo']); "
        "import celery.bin.amqp as m; print(hasattr(m, 'dump_message'))"
    )
    assert run(probe) == "True"


def test_ethhook_worker_is_the_celery_worker_command_of_the_ethhook_app():
    out = subprocess.run(
        [str(BIN / "ethhook-worker"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "celery worker" in out.stdout.lower() or "--queues" in out.stdout
    assert "--pool" in out.stdout and "--concurrency" in out.stdout


def test_a_gevent_worker_is_monkey_patched_before_celery_loads_as_celery_itself_does():
    probe = (
        "from ethhook.worker_main import prepare; prepare(['-P', 'gevent']); "
        "from gevent import monkey; print(monkey.is_module_patched('socket'))"
    )
    assert run(probe) == "True"
    assert run(probe.replace("'gevent'", "'threads'")) == "False"


def test_a_deliver_worker_loads_neither_flower_nor_the_chain_nodes_client():
    """What a deliver worker imports at start (every task module) leaves out Flower and aiohttp,
    the node client only the listener and replay chunks use: ~12 and ~10 MB of RSS; and pydantic,
    which only the API's and the CLI's views use: ~5 MB."""
    probe = (
        "from ethhook.worker_main import prepare; prepare(['-P', 'gevent']); "
        "import ethhook.celery_app as m; m.app.loader.import_default_modules(); "
        "import ethhook.deliver.service; import sys; "
        "print(sorted(p for p in ('flower', 'tornado.web', 'aiohttp', 'web3', 'pydantic') "
        "if p in sys.modules))"
    )
    assert run(probe) == "[]"
