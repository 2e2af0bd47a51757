"""Model loads of a planned order: the claim's choices played over the pool as it stands."""

from __future__ import annotations

from app.domain.model_loads import count_model_loads

BACKLOG = 10


def test_instances_already_holding_the_models_load_nothing() -> None:
    keys = ["a"] * 10 + ["b"] * 10
    assert count_model_loads(keys, ["b", "a"], BACKLOG) == 0


def test_fresh_instances_take_one_model_each() -> None:
    keys = ["a"] * 10 + ["b"] * 10
    assert count_model_loads(keys, [None, None], BACKLOG) == 2


def test_one_instance_loads_each_model_once_in_dispatch_order() -> None:
    keys = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    assert count_model_loads(keys, ["a"], BACKLOG) == 2
    assert count_model_loads(keys, [None], BACKLOG) == 3


def test_an_empty_instance_helps_with_a_served_model() -> None:
    assert count_model_loads(["a"] * 6, ["a", None], BACKLOG) == 1


def test_an_instance_holding_another_model_helps_only_with_a_backlog_worth_a_load() -> None:
    assert count_model_loads(["a"] * 5, ["a", "z"], BACKLOG) == 0
    assert count_model_loads(["a"] * 40, ["a", "z"], BACKLOG) == 1


def test_no_instance_means_no_load() -> None:
    assert count_model_loads(["a"] * 3, [], BACKLOG) == 0
