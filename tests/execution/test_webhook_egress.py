"""The attacker's side of webhook URLs: no delivery reaches loopback, private, link-local or
metadata addresses unless the operator allows them, whatever DNS answers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from runtime.execution.reconciler import RECONCILER
from runtime.execution.webhooks import EgressPolicy, EgressRefused, WebhookDeliverer, WebhookSettings
from runtime.execution.webhooks.settings import parse_networks
from runtime.store import NewTask, Store
from runtime.store.coltypes import utc_now
from tests.support.webhook_receiver import Receiver, receiving, wait_until

PUBLIC = "93.184.216.34"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as made:
        yield made


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'grey.db'}") as file_store:
        yield file_store


class Dns:
    """A resolver whose answers the test sets (and changes), counting the questions."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise OSError(f"{host}: unknown") from None
            return [host]
        return self.answers[host]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.10.0.5", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fe80::1", "link-local"),
        ("100.100.100.200", "not publicly routable"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("64:ff9b::a00:1", "private"),
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str, reason: str) -> None:
    policy = EgressPolicy()
    assert policy.refusal(ipaddress.ip_address(address)) == reason
    assert policy.refusal(ipaddress.ip_address(PUBLIC)) is None


def test_the_operator_allows_networks() -> None:
    policy = EgressPolicy(parse_networks("127.0.0.1, 10.0.0.0/8"))
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback"
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local (cloud metadata)"


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    dns = Dns({"hook.example": [PUBLIC], "mixed.example": ["10.0.0.5", PUBLIC]})
    policy = EgressPolicy(resolver=dns)
    target = policy.pin("https://hook.example/grey?x=1")
    assert (target.url, target.host, target.sni_hostname) == (
        f"https://{PUBLIC}/grey?x=1",
        "hook.example",
        "hook.example",
    )
    assert policy.pin("https://mixed.example:8443/h").url == f"https://{PUBLIC}:8443/h"
    allowed_v6 = EgressPolicy(parse_networks("::1"), resolver=dns)
    assert allowed_v6.pin("http://[::1]:8080/h").url == "http://[::1]:8080/h"
    with pytest.raises(EgressRefused, match=r"10\.0\.0\.5 \(private\)"):
        EgressPolicy(resolver=Dns({"inside.example": ["10.0.0.5"]})).pin("https://inside.example/")


def deliver_once(store: Store, url: str, policy: EgressPolicy) -> str | None:
    """One delivery attempt of a completed task to `url`; the attempt's recorded error."""
    hook = store.webhooks.add("acme", url, ["task.completed"], "secret12")
    task = store.tasks.insert(NewTask(tenant_id="acme", type="stateless", payload={"function": "echo"}))
    store.lifecycle.claim(task.task_id, node_id="w", now=utc_now(), queue_time_ms=1)
    store.lifecycle.transition(task.task_id, from_statuses=("running",), to_status="completed")
    assert store.coordination.acquire(RECONCILER, "node-a", utc_now(), 300) is not None
    settings = WebhookSettings(retry_schedule=(60.0,), poll_seconds=0.05, timeout_seconds=5.0)
    deliverer = WebhookDeliverer(store, settings, lambda: {"node-a"}, policy)

    def attempted() -> bool:
        pending = store.webhooks.deliveries.pending("acme", hook.webhook_id)
        return not pending or pending[0].attempts == 1

    deliverer.start()
    try:
        wait_until(attempted, what="one attempt")
    finally:
        deliverer.stop()
    pending = store.webhooks.deliveries.pending("acme", hook.webhook_id)
    return pending[0].last_error if pending else None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://10.20.30.40:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/hook",
        "http://2130706433:{port}/hook",  # 127.0.0.1, written as a number
        "http://loopback.attacker.example:{port}/hook",
    ],
)
def test_deliveries_to_internal_addresses_are_refused_without_connecting(
    store: Store, receiver: Receiver, url: str
) -> None:
    dns = Dns({"loopback.attacker.example": ["127.0.0.1"], "2130706433": ["127.0.0.1"]})
    error = deliver_once(store, url.format(port=receiver.port), EgressPolicy(resolver=dns))
    assert error is not None and error.startswith("refused: ")
    assert "not allowed for webhooks" in error
    assert receiver.received == []


def test_a_dns_answer_that_changes_after_registration_is_checked_again(
    store: Store, receiver: Receiver
) -> None:
    """Rebinding: public when registered, loopback when delivered. Each attempt resolves
    once, checks, and connects to what it checked."""
    dns = Dns({"rebind.example": [PUBLIC]})
    policy = EgressPolicy(resolver=dns)
    url = f"http://rebind.example:{receiver.port}/hook"
    assert policy.check(url) is None  # registration accepts it
    dns.answers["rebind.example"] = ["127.0.0.1"]
    error = deliver_once(store, url, policy)
    assert error is not None and "127.0.0.1 (loopback)" in error
    assert receiver.received == []


def test_an_allowed_address_is_reached_by_ip_with_the_urls_host(store: Store, receiver: Receiver) -> None:
    """The name resolves only through the policy's resolver (nowhere else), once per
    attempt: the POST reached the receiver at the checked address, Host kept."""
    dns = Dns({"hook.example": ["10.0.0.5", "127.0.0.1"]})
    policy = EgressPolicy(parse_networks("127.0.0.1"), resolver=dns)
    error = deliver_once(store, f"http://hook.example:{receiver.port}/hook", policy)
    assert error is None
    [got] = receiver.received
    assert got.headers["Host"] == f"hook.example:{receiver.port}"
    assert dns.asked == ["hook.example"]
