"""The launcher's children: a dead one is reported with its log, and stop leaves nothing."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from app.launcher import _local_queue_name
from app.settings import Settings
from app.supervisor import ChildExited, Supervisor

STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(f"grandchild {grandchild.pid}", flush=True)
time.sleep(600)
"""


def supervisor_in(tmp_path: Path, **modules: str) -> Supervisor:
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return Supervisor(env, tmp_path, tmp_path)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if sys.platform == "linux" else ""
    return status != "Z"


def test_a_child_that_exits_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    children = supervisor_in(
        tmp_path, crashing="print('starting', flush=True)\nraise SystemExit('no module packaging')"
    )
    children.start("worker", "crashing")
    children.children[0].process.wait(timeout=10)
    with pytest.raises(ChildExited) as exited:
        children.check()
    report = exited.value.report()
    assert exited.value.name == "worker"
    assert exited.value.returncode == 1
    assert "worker exited unexpectedly (exit code 1)" in report
    assert "starting" in report
    assert "no module packaging" in report


def test_running_children_pass_the_check(tmp_path: Path) -> None:
    children = supervisor_in(tmp_path, sleeper="import time; time.sleep(600)")
    children.start("reconciler", "sleeper")
    try:
        children.check()
    finally:
        children.stop(grace_s=2)


def test_stop_kills_a_child_that_ignores_sigterm_and_what_it_started(tmp_path: Path) -> None:
    children = supervisor_in(tmp_path, stubborn=STUBBORN)
    children.start("worker", "stubborn")
    log = tmp_path / "worker.log"
    deadline = time.monotonic() + 10
    while "grandchild" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(log.read_text().split()[1])
    child = children.children[0].process.pid
    started = time.monotonic()
    children.stop(grace_s=1)
    took = time.monotonic() - started
    assert not alive(child)
    time.sleep(0.2)  # the grandchild's parent is gone; init reaps it
    assert not alive(grandchild)
    assert took < 5


def test_each_data_directory_gets_a_queue_of_its_own(tmp_path: Path) -> None:
    one = _local_queue_name(Settings(data_dir=tmp_path / "one"))
    same = _local_queue_name(Settings(data_dir=tmp_path / "one"))
    other = _local_queue_name(Settings(data_dir=tmp_path / "two"))
    assert one == same
    assert one != other
    Settings(queue_name=one)  # a valid queue name by the setting's own rule
