"""A sweep's own webhook end to end: the sweep runs on real workers and stand-ins, its
`sweep.finished` event is written in the finalizer's transaction, and the reconciler's sender
posts it, signed, to a receiver on loopback (allowed by this test's settings)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from standardwebhooks import Webhook

from tests.integration.conftest import System, wait_for_sweep
from tests.support.webhook_receiver import receiving

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]
ALLOW_LOOPBACK = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_POLL_S": "0.2"}


def test_a_finished_sweep_posts_one_signed_sweep_finished_to_its_webhook(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory(timings=ALLOW_LOOPBACK)
    system.settings = system.settings.model_copy(update={"webhook_allow_private_networks": True})
    api = api_for(system)
    with receiving() as receiver:
        body = {
            "workflow": "demo-noise",
            "axes": [{"param": "seed", "values": "1-4"}],
            "webhook": {"url": f"{receiver.url}/hooks/comfy", "events": ["sweep.finished"]},
        }
        created = api.post("/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep = created.json()
        secret = sweep["webhook"]["secret"]
        assert wait_for_sweep(api, sweep["id"], system)["status"] == "succeeded"

        (delivery,) = receiver.wait_for(1, timeout=30)
        payload = Webhook(secret).verify(delivery.body, delivery.headers)
        assert delivery.path == "/hooks/comfy"
        assert payload["type"] == "sweep.finished"
        assert payload["data"]["sweep_id"] == sweep["id"]
        assert payload["data"]["data"]["status"] == "succeeded"
        # Subscribed to sweep.finished only: nothing else of the sweep's events was sent.
        assert [json.loads(r.body)["type"] for r in receiver.received] == ["sweep.finished"]

    listing = api.get(f"/v1/webhooks/{sweep['webhook']['id']}/deliveries").json()
    (shown,) = listing["items"]
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("succeeded", 1, 200)
