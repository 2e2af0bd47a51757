"""How a sweep's final state follows from its runs' final states, and which moves the state
machine allows."""

from __future__ import annotations

from app.domain.states import (
    FINAL_RUN_STATUSES,
    FINAL_SWEEP_STATUSES,
    RUN_TRANSITIONS,
    SWEEP_TRANSITIONS,
    RunStatus,
    SweepStatus,
    final_sweep_status,
    resumed_status,
    run_may_move,
    sweep_may_move,
)


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


def test_a_final_sweep_moves_only_when_reopened_to_running() -> None:
    for source, target in SWEEP_TRANSITIONS:
        if source in FINAL_SWEEP_STATUSES:
            assert target is SweepStatus.RUNNING


def test_a_paused_sweep_moves_only_back_to_claimable_or_to_an_end() -> None:
    out_of_paused = {target for source, target in SWEEP_TRANSITIONS if source is SweepStatus.PAUSED}
    assert out_of_paused == {
        SweepStatus.PENDING,
        SweepStatus.RUNNING,
        SweepStatus.CANCELLED,
        SweepStatus.FINALIZING,
    }


def test_only_an_unfinished_sweep_can_be_paused_or_cancelled() -> None:
    assert sweep_may_move(SweepStatus.RUNNING, SweepStatus.PAUSED)
    assert sweep_may_move(SweepStatus.PENDING, SweepStatus.PAUSED)
    assert not sweep_may_move(SweepStatus.FINALIZING, SweepStatus.PAUSED)
    assert sweep_may_move(SweepStatus.PAUSED, SweepStatus.CANCELLED)
    assert not sweep_may_move(SweepStatus.FINALIZING, SweepStatus.CANCELLED)


def test_a_sweep_paused_before_it_started_resumes_pending() -> None:
    assert resumed_status(started=False) is SweepStatus.PENDING
    assert resumed_status(started=True) is SweepStatus.RUNNING


def test_every_state_is_reachable_from_pending() -> None:
    reached, frontier = {SweepStatus.PENDING}, [SweepStatus.PENDING]
    while frontier:
        here = frontier.pop()
        for source, target in SWEEP_TRANSITIONS:
            if source is here and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(SweepStatus)


def test_a_run_ends_only_from_running_except_by_cancellation() -> None:
    assert run_may_move(RunStatus.RUNNING, RunStatus.QUEUED)  # a retryable failure
    assert not run_may_move(RunStatus.QUEUED, RunStatus.SUCCEEDED)
    assert {target for _, target in RUN_TRANSITIONS if _ is RunStatus.QUEUED} == {
        RunStatus.RUNNING,
        RunStatus.CANCELLED,
    }


def test_an_ended_run_moves_only_when_retried_and_a_succeeded_one_never() -> None:
    for source, target in RUN_TRANSITIONS:
        if source in FINAL_RUN_STATUSES:
            assert source is not RunStatus.SUCCEEDED
            assert target is RunStatus.QUEUED
