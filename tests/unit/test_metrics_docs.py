"""Every metric the operator registers is documented in docs/metrics.md, in a table row with its type and exactly
its labels (issue #11: "every metric ... with its labels and a PromQL example")."""

from __future__ import annotations

import re
from pathlib import Path

import prometheus_client
from prometheus_client.metrics import MetricWrapperBase

import azure_vm_operator.metrics  # noqa: F401 - registers the metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(?P<name>azvm_\w+)` \| (?P<type>[^|]+) \| (?P<labels>[^|]*) \|", re.MULTILINE)
TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary", "info": "info"}


def _registered() -> dict[str, tuple[str, set[str]]]:
    """name as exposed (a counter's with _total) -> (type, label names), for every azvm_ collector."""
    collectors = set(prometheus_client.REGISTRY._names_to_collectors.values())  # noqa: SLF001 - no public listing
    found: dict[str, tuple[str, set[str]]] = {}
    for collector in collectors:
        if not isinstance(collector, MetricWrapperBase):  # process_*, python_*, gc_*; or a custom one of ours
            assert not [f.name for f in collector.collect() if f.name.startswith("azvm_")], \
                "a custom collector of azvm_ metrics: teach this test its labels"
            continue
        for family in collector.describe():
            if not family.name.startswith("azvm_"):
                continue
            name = family.name + "_total" if family.type == "counter" else family.name
            found[name] = (family.type, set(collector._labelnames))  # noqa: SLF001
    return found


def _documented() -> dict[str, tuple[str, set[str]]]:
    rows: dict[str, tuple[str, set[str]]] = {}
    for row in ROW.finditer(DOC.read_text()):
        assert row["name"] not in rows, f"{row['name']} is documented twice"
        kind = row["type"].strip().split()[0]
        rows[row["name"]] = (kind, set(re.findall(r"`(\w+)`", row["labels"])))
    return rows


def test_the_operator_registers_metrics() -> None:
    assert len(_registered()) >= 20  # the test sees the registry, not an empty one


def test_every_registered_metric_is_documented_with_its_type_and_labels() -> None:
    registered, documented = _registered(), _documented()
    missing = sorted(set(registered) - set(documented))
    assert not missing, f"not in docs/metrics.md: {missing}"
    for name, (kind, labels) in registered.items():
        doc_kind, doc_labels = documented[name]
        assert TYPES.get(doc_kind) == kind, f"{name}: documented as {doc_kind}, registered as {kind}"
        assert doc_labels == labels, f"{name}: documented labels {sorted(doc_labels)}, registered {sorted(labels)}"


def test_nothing_documented_that_is_not_registered() -> None:
    stale = sorted(set(_documented()) - set(_registered()))
    assert not stale, f"documented in docs/metrics.md but not registered: {stale}"
