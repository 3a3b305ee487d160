"""What workqueue/enqueue.py's publishing relies on in Celery and kombu, and the versions allowed.

`_publish` batches messages with kombu's `Producer.batch()` (first in kombu 5.7.0; 5.6.2 has
none) and `_TaskSender` repeats the end of celery 5.7's `send_task` through private parts. Both
are allowed only in the series they were checked against; these tests fail when pyproject.toml
allows another, when the installed packages are outside what it allows, or when a part is gone.
tests/integration/test_enqueue.py checks the messages themselves against `app.send_task`'s.
"""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
CHECKED = {"celery": (Version("5.7"), Version("5.8")), "kombu": (Version("5.7"), Version("5.8"))}
# create_task_message's arguments, in the order _TaskSender.send passes them positionally.
POSITIONAL = (
    "task_id", "name", "args", "kwargs", "countdown", "eta", "group_id", "group_index", "expires",
    "retries", "chord", "callbacks", "errbacks", "reply_to", "time_limit", "soft_time_limit",
    "create_sent_event", "root_id", "parent_id", "shadow", "chain",
)  # fmt: skip
KEYWORDS = ("ignore_result", "replaced_task_nesting", "origin", "argsrepr", "kwargsrepr")


def declared(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = (r for r in map(Requirement, project["dependencies"]) if r.name == name)
    return requirement


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_pyproject_allows_only_the_checked_series(name: str) -> None:
    floor, cap = CHECKED[name]
    spec = declared(name).specifier
    lows = [Version(s.version) for s in spec if s.operator == ">="]
    highs = [Version(s.version) for s in spec if s.operator == "<"]
    assert lows and min(lows) >= floor, f"pyproject.toml allows {name}{spec}; needs >={floor}"
    assert highs and max(highs) <= cap, f"pyproject.toml allows {name}{spec}; checked <{cap}"


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_the_installed_version_is_one_pyproject_allows(name: str) -> None:
    spec = declared(name).specifier
    assert spec.contains(version(name)), f"{name} {version(name)} is installed; needs {spec}"


def test_the_celery_and_kombu_parts_the_fast_path_uses_exist() -> None:
    from celery.app.task import Task
    from celery.utils.nodenames import anon_nodename
    from kombu import Connection, Producer

    from ethhook.celery_app import app

    assert callable(Producer.batch)
    assert callable(Connection._reraise_as_library_errors)
    assert callable(Task._get_exec_options)
    assert callable(anon_nodename)
    assert callable(app._tasks.get)
    assert isinstance(app.thread_oid, str)
    assert app.current_worker_task is None  # not inside a task here
    assert isinstance(app.conf.task_send_sent_event, bool)

    parameters = inspect.signature(app.amqp.create_task_message).parameters
    assert tuple(parameters)[: len(POSITIONAL)] == POSITIONAL
    assert set(KEYWORDS) <= set(parameters)
    sender = inspect.signature(app.amqp.send_task_message).parameters
    assert tuple(sender)[:3] == ("producer", "name", "message")
