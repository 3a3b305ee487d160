"""How `make test` hands modules to its processes (tests/support/schedule.py): a module that would
wait for its turn on the machine is passed over while another is free, and a process gets its
next module only when it is on its last test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.schedule import HEAVY, QUIET, TurnScheduling


class Node:
    """What the scheduler uses of an xdist worker: the tests it was sent."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def scheduled(config: pytest.Config, collection: list[str]) -> tuple[Any, list[Node]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config.option, "tx", ["2*popen"])  # two processes, as `-n 2` would say
        sched = TurnScheduling(config)
    nodes = [Node("gw0"), Node("gw1")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    return sched, nodes


def modules(collection: list[str], node: Node) -> list[str]:
    return list(dict.fromkeys(collection[i].split("::")[0] for i in node.sent))


def test_a_module_that_would_wait_for_its_turn_is_passed_over_while_another_is_free(pytestconfig):
    collection = [
        f"{QUIET[0]}::test_a",
        f"{QUIET[0]}::test_b",
        f"{QUIET[0]}::test_c",
        f"{QUIET[1]}::test_a",
        f"{HEAVY[0]}::test_a",
        "tests/unit/test_free.py::test_a",
        "tests/unit/test_free.py::test_b",
        "tests/unit/test_free.py::test_c",
    ]
    sched, (first, second) = scheduled(pytestconfig, collection)

    assert modules(collection, first) == [QUIET[0]]
    # The other QUIET module and the HEAVY one would wait for the first one's turn.
    assert modules(collection, second) == ["tests/unit/test_free.py"]

    # Still two tests to go: nothing more yet. On its last test, the second QUIET module, which
    # waits for no other process's module.
    sched.mark_test_complete(first, first.sent[0])
    assert modules(collection, first) == [QUIET[0]]
    sched.mark_test_complete(first, first.sent[1])
    assert modules(collection, first) == [QUIET[0], QUIET[1]]


def test_a_module_goes_out_first_in_line_when_every_one_left_would_wait(pytestconfig):
    collection = [f"{QUIET[0]}::test_a", f"{QUIET[0]}::test_b", f"{QUIET[1]}::test_a"]
    sched, (first, second) = scheduled(pytestconfig, collection)

    assert modules(collection, first) == [QUIET[0]]
    assert modules(collection, second) == [QUIET[1]]  # its lock keeps the turn
