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
