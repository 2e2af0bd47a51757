"""The pure rules of webhooks: the retry schedule and which addresses may be targets."""

from __future__ import annotations

import ipaddress

import pytest

from app.domain.webhook_schedule import (
    DEFAULT_RETRY_WAITS_S,
    max_attempts,
    parse_retry_waits,
    wait_before_retry,
)
from app.domain.webhook_targets import (
    address_refusal,
    parse_policy,
    target_refusal,
    url_problem,
)
from app.logs.redaction import redact_secrets
from app.services.webhooks import ResolvedTarget, new_secret


def test_the_default_schedule_retries_for_more_than_a_day() -> None:
    assert sum(DEFAULT_RETRY_WAITS_S) > 24 * 3600
    assert max_attempts(DEFAULT_RETRY_WAITS_S) == 8
    assert wait_before_retry(1, DEFAULT_RETRY_WAITS_S) == 5
    assert wait_before_retry(7, DEFAULT_RETRY_WAITS_S) == 36000
    assert wait_before_retry(8, DEFAULT_RETRY_WAITS_S) is None


def test_a_schedule_setting_parses_or_names_the_problem() -> None:
    assert parse_retry_waits("0.2, 0.2,1") == (0.2, 0.2, 1.0)
    assert parse_retry_waits("") == ()
    assert wait_before_retry(1, ()) is None  # one attempt, no retry
    with pytest.raises(ValueError, match="seconds"):
        parse_retry_waits("5,soon")
    with pytest.raises(ValueError, match="negative"):
        parse_retry_waits("5,-1")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address judged, not bound)
        ("100.64.0.1", "non-global"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_only_global_addresses_are_targets_by_default(address: str, kind: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == kind


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    addresses = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.8")]
    refusal = target_refusal("hooks.example.com", addresses, parse_policy(""))
    assert refusal is not None
    assert "10.0.0.8" in refusal


def test_listed_hosts_domains_and_networks_are_allowed() -> None:
    policy = parse_policy("hooks.internal, .corp.example, 10.20.0.0/16")
    private = [ipaddress.ip_address("10.9.9.9")]
    assert target_refusal("hooks.internal", private, policy) is None
    assert target_refusal("ci.corp.example", private, policy) is None
    assert target_refusal("corp.example.evil.com", private, policy) is not None
    assert target_refusal("x.test", [ipaddress.ip_address("10.20.1.1")], policy) is None
    assert target_refusal("x.test", [], policy) == "x.test resolves to no address"
    with pytest.raises(ValueError, match="neither"):
        parse_policy("http://hooks.internal/")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/a?b=c", None),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://hooks.example.com/", "only http and https"),
        ("https://token@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("https://hooks.example.com/#top", "fragment"),
    ],
)
def test_url_shape_rules(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert found == problem if problem is None else problem in (found or "")


def test_a_checked_target_is_pinned_to_its_address_with_its_host_name_kept() -> None:
    v4, v6 = ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("2606:4700::1111")
    target = ResolvedTarget("https://hooks.example.com:8443/in?team=7", (v4, v6))
    assert target.pinned_to(v4) == (
        "https://93.184.215.14:8443/in?team=7",
        {"host": "hooks.example.com:8443"},
        {"sni_hostname": "hooks.example.com"},
    )
    plain = ResolvedTarget("http://hooks.example.com/in", (v6,))
    assert plain.pinned_to(v6) == (
        "http://[2606:4700::1111]/in",
        {"host": "hooks.example.com"},
        {},
    )


def test_a_webhook_secret_never_reaches_a_log_line() -> None:
    secret = new_secret()
    assert secret not in redact_secrets(f"endpoint added secret={secret} ok")
    assert "whsec_[redacted] ok" in redact_secrets(f"secret={secret} ok")
