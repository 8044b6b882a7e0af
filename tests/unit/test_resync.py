"""When each resource is looked at again: jittered, and per resource when annotated."""

from __future__ import annotations

from azure_vm_operator.config import OperatorConfig
from azure_vm_operator.controllers.handlers import resync_delay

CONFIG = OperatorConfig(resync_interval=300.0)


def test_resyncs_are_jittered_so_a_fleet_never_observes_in_one_second():
    firsts = [resync_delay(CONFIG, {}, first=True) for _ in range(2000)]
    assert 0 <= min(firsts) and max(firsts) <= 300
    assert len({int(f) for f in firsts}) > 250  # spread over the whole interval, not bunched
    later = [resync_delay(CONFIG, {}) for _ in range(500)]
    assert 270 <= min(later) and max(later) <= 330


def test_the_observe_interval_annotation_overrides_the_resync_interval():
    annotations = {"compute.azvm.io/observe-interval": "1m"}
    assert all(54 <= resync_delay(CONFIG, annotations) <= 66 for _ in range(200))
    assert all(270 <= resync_delay(CONFIG, {"compute.azvm.io/observe-interval": "soon"}) <= 330 for _ in range(50))


# -- ResyncScheduler: one task for the fleet's periodic observation ------------------------------------------------

import asyncio  # noqa: E402

from azure_vm_operator.controllers.resync import ResyncScheduler  # noqa: E402


def _body(uid: str, generation: int = 1) -> dict:
    return {"metadata": {"uid": uid, "name": uid, "namespace": "ns", "generation": generation}}


def test_each_resource_is_observed_when_due_with_its_latest_body_and_not_after_it_is_forgotten():
    async def main() -> None:
        seen: list[tuple[str, str, int]] = []

        async def observe(plural, body):
            seen.append((plural, body["metadata"]["uid"], body["metadata"]["generation"]))
            return 0.05

        scheduler = ResyncScheduler(observe=observe, first_delay=lambda body: 0.01)
        scheduler.start()
        scheduler.update("a", "virtualmachines", _body("a"))
        scheduler.update("b", "scalesets", _body("b"))
        await asyncio.sleep(0.03)
        assert sorted(seen) == [("scalesets", "b", 1), ("virtualmachines", "a", 1)]
        scheduler.update("a", "virtualmachines", _body("a", generation=2))  # no second schedule, a newer body
        scheduler.forget("b")
        await asyncio.sleep(0.08)
        assert ("virtualmachines", "a", 2) in seen and seen.count(("scalesets", "b", 1)) == 1
        assert len(scheduler) == 1
        await scheduler.stop()

    asyncio.run(main())


def test_a_resource_is_never_observed_twice_at_once_and_stop_cancels_a_pass_that_outlives_the_timeout():
    async def main() -> None:
        running = 0
        most = 0
        cancelled = asyncio.Event()

        async def observe(plural, body):
            nonlocal running, most
            running += 1
            most = max(most, running)
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            finally:
                running -= 1
            return 0.0

        scheduler = ResyncScheduler(observe=observe, first_delay=lambda body: 0.0, stop_timeout=0.05)
        scheduler.start()
        scheduler.update("a", "virtualmachines", _body("a"))
        await asyncio.sleep(0.05)
        assert scheduler.due_in("a") is None  # running
        await scheduler.stop()
        assert most == 1 and cancelled.is_set() and len(scheduler) == 0

    asyncio.run(main())


def test_an_observation_that_fails_unexpectedly_keeps_the_resource_scheduled():
    async def main() -> None:
        calls = 0

        async def observe(plural, body):
            nonlocal calls
            calls += 1
            raise RuntimeError("boom")

        scheduler = ResyncScheduler(observe=observe, first_delay=lambda body: 0.01)
        scheduler.start()
        scheduler.update("a", "virtualmachines", _body("a"))
        await asyncio.sleep(0.1)
        assert calls >= 3
        await scheduler.stop()

    asyncio.run(main())
