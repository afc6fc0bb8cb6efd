"""Placement-aware routing: warm replicas first, cold starts from the fastest location,
eviction by LFU (default) or LRU when the slots are full."""

from __future__ import annotations

import pytest

from runtime.execution.serving.errors import NoCapacity
from runtime.execution.serving.router import LFU, LRU, Place, Replica, Router


class FakeBackend:
    """Replicas in memory; each location a (node, device); every start counted."""

    def __init__(self, places: dict[str, list[Place]]) -> None:
        self.places = places
        self.live: dict[str, list[tuple[str, Replica]]] = {}
        self.started: list[tuple[str, Place]] = []
        self.stopped: list[str] = []
        self._ports = iter(range(9000, 10000))

    def running(self, tenant_id: str, model_name: str) -> list[Replica]:
        return [
            r for reps in self.live.values() for t, r in reps if t == tenant_id and r.model_name == model_name
        ]

    def locations(self, tenant_id: str, model_name: str) -> list[Place]:
        return list(self.places.get(model_name, []))

    def live_on(self, node_id: str) -> list[tuple[str, Replica]]:
        return list(self.live.get(node_id, []))

    def start(self, tenant_id: str, model_name: str, place: Place) -> Replica:
        port = next(self._ports)
        replica = Replica(
            f"{model_name}-{place.node_id}-{port}", model_name, place.node_id, place.device, "", True
        )
        self.live.setdefault(place.node_id, []).append((tenant_id, replica))
        self.started.append((model_name, place))
        return replica

    def stop(self, tenant_id: str, replica: Replica) -> None:
        self.live[replica.node_id].remove((tenant_id, replica))
        self.stopped.append(replica.model_name)

    def deploy(self, tenant_id: str, model_name: str, node: str, device: str) -> Replica:
        replica = Replica(f"{model_name}-{node}-1", model_name, node, device, "", routed=False)
        self.live.setdefault(node, []).append((tenant_id, replica))
        return replica


def disk(*models: str, node: str = "node1") -> dict[str, list[Place]]:
    return {model: [Place(node, "disk")] for model in models}


def test_the_first_request_is_a_timed_cold_start_and_the_next_is_warm() -> None:
    backend = FakeBackend(disk("a"))
    router = Router(backend, slots=2)
    first = router.route("acme", "a")
    assert first.cold and first.cold_start_ms is not None and first.cold_start_ms >= 0
    second = router.route("acme", "a")
    assert not second.cold and second.replica == first.replica
    assert len(backend.started) == 1


def test_a_warm_replica_is_preferred_over_a_faster_location() -> None:
    backend = FakeBackend({"a": [Place("node1", "disk"), Place("node2", "gpu0")]})
    warm = backend.deploy("acme", "a", "node1", "disk")
    routed = Router(backend, slots=2).route("acme", "a")
    assert not routed.cold and routed.replica == warm


def test_a_cold_start_loads_from_gpu_before_dram_before_disk() -> None:
    places = [Place("node1", "disk"), Place("node2", "dram"), Place("node3", "gpu0")]
    backend = FakeBackend({"a": places, "b": places[:2], "c": places[:1]})
    router = Router(backend, slots=2)
    assert router.route("acme", "a").replica.device == "gpu0"
    assert router.route("acme", "b").replica.device == "dram"
    assert router.route("acme", "c").replica.device == "disk"


def test_another_tenants_replica_of_the_same_model_name_is_not_warm_for_you() -> None:
    backend = FakeBackend(disk("a"))
    router = Router(backend, slots=4)
    router.route("acme", "a")
    assert router.route("other", "a").cold


@pytest.mark.parametrize(("policy", "victim"), [(LFU, "b"), (LRU, "a")])
def test_a_full_node_evicts_by_policy(policy: str, victim: str) -> None:
    backend = FakeBackend(disk("a", "b", "c"))
    router = Router(backend, slots=2, policy=policy)
    for model in ["a", "a", "a", "b", "b"]:  # a: asked 3 times, first; b: twice, last
        router.route("acme", model)
    routed = router.route("acme", "c")
    assert routed.cold and routed.evicted is not None and routed.evicted.model_name == victim
    assert backend.stopped == [victim]


def test_deployed_services_are_never_evicted() -> None:
    backend = FakeBackend(disk("a", "b"))
    backend.deploy("acme", "a", "node1", "disk")
    with pytest.raises(NoCapacity):
        Router(backend, slots=1).route("acme", "b")


def test_a_model_with_no_location_cannot_be_cold_started() -> None:
    with pytest.raises(NoCapacity):
        Router(FakeBackend({}), slots=1).route("acme", "ghost")


def test_a_node_with_a_free_slot_is_used_before_evicting() -> None:
    both = [Place("node1", "disk"), Place("node2", "disk")]
    backend = FakeBackend({"a": both, "b": both})
    router = Router(backend, slots=1)
    router.route("acme", "a")
    routed = router.route("acme", "b")
    assert routed.evicted is None and routed.replica.node_id != router.route("acme", "a").replica.node_id
