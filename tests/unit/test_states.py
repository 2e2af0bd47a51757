"""How a sweep's final state follows from its runs' final states."""

from __future__ import annotations

from app.domain.states import RunStatus, SweepStatus, final_sweep_status


def test_a_sweep_whose_runs_all_succeeded_succeeded() -> None:
    assert final_sweep_status({RunStatus.SUCCEEDED: 12}) == SweepStatus.SUCCEEDED


def test_some_failed_runs_make_a_partial_sweep() -> None:
    counts = {RunStatus.SUCCEEDED: 11, RunStatus.FAILED: 1}
    assert final_sweep_status(counts) == SweepStatus.PARTIAL


def test_a_sweep_with_no_succeeded_run_failed() -> None:
    assert final_sweep_status({RunStatus.FAILED: 3}) == SweepStatus.FAILED
    assert final_sweep_status({RunStatus.FAILED: 1, RunStatus.CANCELLED: 2}) == SweepStatus.FAILED


def test_cancelled_runs_among_successes_make_it_partial() -> None:
    counts = {RunStatus.SUCCEEDED: 2, RunStatus.CANCELLED: 1}
    assert final_sweep_status(counts) == SweepStatus.PARTIAL
