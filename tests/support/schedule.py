"""Which modules take turns, and how `make test` hands modules to its processes.

`make test` runs the suite in several pytest-xdist processes, each taking whole modules
(`--dist loadfile`). Most modules run side by side, but for two things of the machine's, which
modules take turns on:
* its RabbitMQ, which one RabbitMQ module restarts (SERIAL): one at a time;
* its two cores: a module that measures rates and bounds in wall-clock time (QUIET) runs beside
  no other QUIET module and none that loads the database with a million rows or hammers the API
  (HEAVY); HEAVY ones may run together.

Locks on files (tests/conftest.py) keep the turns, also against a concurrent run of the suite.
TurnScheduling hands out modules so that a process seldom has to wait on them: the first module in
the queue that no other process's module would keep waiting, and a process's next module only when
it is on its last test (xdist's own hands it out a test earlier).
"""

from __future__ import annotations

import fcntl

from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

SERIAL = ("tests/faults/test_rabbitmq.py", "tests/integration/test_rabbitmq.py")
QUIET = ("tests/integration/test_protection_bounds.py", "tests/integration/test_resilience.py")
HEAVY = (
    "tests/api/test_schemathesis.py",
    "tests/integration/test_matching_where.py",
    "tests/integration/test_partition_migration.py",
    "tests/integration/test_retention.py",
)


def turn_lock(module: str) -> tuple[str, int] | None:
    """The lock file and mode a module takes its turn with, if any."""
    if module.startswith(SERIAL):
        return "ethhook-tests-rabbitmq.lock", fcntl.LOCK_EX
    if module.startswith(QUIET):
        return "ethhook-tests-cpu.lock", fcntl.LOCK_EX
    if module.startswith(HEAVY):
        return "ethhook-tests-cpu.lock", fcntl.LOCK_SH
    return None


def _waits_for(module: str, running: str) -> bool:
    """Whether `module` would wait for its turn while `running` runs in another process."""
    mine, theirs = turn_lock(module), turn_lock(running)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        return False
    return fcntl.LOCK_EX in (mine[1], theirs[1])


class TurnScheduling(LoadFileScheduling):
    """xdist's whole-module scheduling, in the collection's order, but for the turns."""

    def _reschedule(self, node: WorkerController) -> None:
        # A process needs its next test before it runs the one it has (its teardown depends on
        # it), so the next module goes out with the last test of the current one, not earlier.
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
        elif self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)

    def _assign_work_unit(self, node: WorkerController) -> None:
        # The first module that no other process's unfinished one would keep waiting for its turn
        # (the first of all when every one would wait). A queue with the chosen module first,
        # for xdist's own method, which takes the first.
        running = [
            module
            for other, work in self.assigned_work.items()
            if other is not node
            for module, tests in work.items()
            if not all(tests.values())
        ]
        for module in self.workqueue:
            if not any(_waits_for(module, other) for other in running):
                self.workqueue.move_to_end(module, last=False)
                break
        super()._assign_work_unit(node)
