"""The real Prometheus (Debian's package, `make prometheus`) scraping the emulator's /metrics over HTTPS and the
operator's metrics over HTTP, read back through the operator's PromQL client (azure_vm_operator.promql).

One Prometheus and one emulator per module. Without the prometheus binary these tests fail, telling to run
`make prometheus`; with AZVM_ALLOW_MISSING_PROMETHEUS=1 they skip instead.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azvm_sandbox.harness import Environment
from azvm_sandbox.prometheus import (
    PrometheusNotInstalled,
    PrometheusServer,
    find_prometheus,
    missing_allowed,
)
from e2e_helpers import CRDS, SSH_KEY
from prometheus_client import start_http_server

from azure_vm_operator import metrics  # noqa: F401 - the operator's metrics, in the registry served below
from azure_vm_operator.promql import (
    AMBIGUOUS_RESULT,
    NO_DATA,
    PROMETHEUS_UNREACHABLE,
    QUERY_REJECTED,
    UNEXPECTED_RESPONSE,
    PromQLError,
    query_value,
)

RG, SCALE_SET, LOCATION = "prom-rg", "prom-ss", "westeurope"
CAPACITY = 3
POLL = 0.05  # the SDK's polling interval against the emulator


def require_prometheus() -> None:
    try:
        find_prometheus()
    except PrometheusNotInstalled as exc:
        if missing_allowed():
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_scale_set(env: Environment) -> str:
    """A resource group, a VNet and a scale set of CAPACITY instances, through the Azure SDK; its id."""
    env.azure_client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOCATION})
    vnet = env.azure_client(NetworkManagementClient).virtual_networks.begin_create_or_update(
        RG, "prom-vnet",
        {"location": LOCATION, "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.1.0/24"}}]}},
        polling_interval=POLL,
    ).result()
    body: dict[str, Any] = {
        "location": LOCATION,
        "sku": {"name": "Standard_B2s", "tier": "Standard", "capacity": CAPACITY},
        "properties": {
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "storageProfile": {
                    "imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                       "sku": "22_04-lts-gen2", "version": "latest"},
                    "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
                },
                "osProfile": {
                    "computerNamePrefix": "web", "adminUsername": "azureuser",
                    "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
                        {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}]}},
                },
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True,
                    "ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": vnet.subnets[0].id}}}],
                }}]},
            },
        },
    }
    created = env.azure_client(ComputeManagementClient).virtual_machine_scale_sets.begin_create_or_update(
        RG, SCALE_SET, body, polling_interval=POLL).result()
    return str(created.id)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    require_prometheus()
    environment = Environment(workdir=tmp_path_factory.mktemp("prometheus-source"), crds_dir=CRDS)
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def scale_set(env: Environment) -> str:
    return create_scale_set(env)


@pytest.fixture(scope="module")
def operator_metrics_port() -> Iterator[int]:
    """The operator's metrics (prometheus-client's default registry) on plain HTTP, as `--metrics-port` serves them."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    yield port
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def prometheus(env: Environment, scale_set: str, operator_metrics_port: int) -> Iterator[PrometheusServer]:
    targets = [("emulator", f"{env.emulator.url}/metrics"),  # HTTPS, the emulator's own CA
               ("operator", f"http://127.0.0.1:{operator_metrics_port}/metrics")]
    with PrometheusServer(targets, ca_file=env.emulator.ca_path, scrape_interval=0.5) as server:
        yield server


async def eventually_value(server: str, promql: str, expected: float, timeout: float = 10.0) -> float:
    """Poll query_value until it answers ``expected``; fail with the last answer (or error) after the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                last = await query_value(session, server, promql, timeout=2.0)
                if math.isclose(last, expected, abs_tol=1e-6):
                    return last
            except PromQLError as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise AssertionError(f"{promql} did not reach {expected} within {timeout}s; last: {last!r}")
            await asyncio.sleep(0.1)


async def query_error(server: str, promql: str, timeout: float = 2.0) -> PromQLError:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PromQLError) as caught:
            await query_value(session, server, promql, timeout=timeout)
    return caught.value


# ---- values -----------------------------------------------------------------------------------------------------

def test_prometheus_scrapes_the_emulator_over_https_and_the_operator_over_http(prometheus: PrometheusServer) -> None:
    targets = {t["scrapePool"]: t for t in prometheus.wait_for_targets_up(time.monotonic() + 10)}
    assert targets["emulator"]["scrapeUrl"].startswith("https://127.0.0.1:")
    assert targets["operator"]["scrapeUrl"].startswith("http://127.0.0.1:")
    assert {t["health"] for t in targets.values()} == {"up"}
    up = prometheus.query('up{job=~"emulator|operator"}')["result"]
    assert sorted((s["metric"]["job"], s["value"][1]) for s in up) == [("emulator", "1"), ("operator", "1")]


async def test_the_scale_set_load_reaches_prometheus_per_instance(env: Environment, scale_set: str,
                                                                   prometheus: PrometheusServer) -> None:
    query = f'avg(azure_vm_cpu_percent{{scale_set="{SCALE_SET}"}})'
    # a demand of 40 % on a reference capacity of 6, spread over the 3 running instances: 80 % each
    await asyncio.to_thread(env.admin, lambda a: a.set_load(scale_set, 40.0, reference_capacity=6))
    assert await eventually_value(prometheus.url, query, 80.0) == 80.0
    count = f'count(azure_vm_cpu_percent{{scale_set="{SCALE_SET}"}})'
    assert await eventually_value(prometheus.url, count, float(CAPACITY)) == CAPACITY
    # a new load shows within a few scrapes
    await asyncio.to_thread(env.admin, lambda a: a.set_load(scale_set, 10.0, reference_capacity=CAPACITY))
    assert await eventually_value(prometheus.url, query, 10.0) == 10.0


async def test_a_scalar_and_a_point_in_time(prometheus: PrometheusServer) -> None:
    moment = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
    async with aiohttp.ClientSession() as session:
        assert await query_value(session, prometheus.url, "time()", timeout=2, at=moment) == moment.timestamp()
        naive_is_utc = await query_value(session, prometheus.url, "time()", timeout=2, at=moment.replace(tzinfo=None))
        assert naive_is_utc == moment.timestamp()
        assert await query_value(session, prometheus.url + "/", "vector(2) * 21", timeout=2) == 42.0


async def test_a_path_prefix_and_credentials_in_the_server_url(env: Environment) -> None:
    with PrometheusServer(route_prefix="/prometheus") as prefixed:
        assert prefixed.url.endswith("/prometheus")
        async with aiohttp.ClientSession() as session:
            assert await query_value(session, prefixed.url, "vector(7)", timeout=2) == 7.0
            # Prometheus without authentication ignores basic auth: the userinfo is sent, never shown
            with_userinfo = prefixed.url.replace("http://", "http://reader:s3cret@")
            assert await query_value(session, with_userinfo, "vector(1)", timeout=2) == 1.0
            wrong_prefix = prefixed.url.removesuffix("/prometheus").replace("http://", "http://reader:s3cret@")
            with pytest.raises(PromQLError) as caught:
                await query_value(session, wrong_prefix + "/other", "vector(1)", timeout=2)
    assert caught.value.reason == UNEXPECTED_RESPONSE and "404" in caught.value.message
    assert "s3cret" not in str(caught.value) and "reader" not in str(caught.value)


# ---- every error reason, against the real server -------------------------------------------------------------------

async def test_a_syntax_error_is_rejected_with_prometheus_text(prometheus: PrometheusServer) -> None:
    error = await query_error(prometheus.url, "avg(azure_vm_cpu_percent{")
    assert error.reason == QUERY_REJECTED
    assert error.message.startswith("Prometheus rejected the query: ") and "parse error" in error.message


async def test_a_selector_matching_nothing_is_no_data(prometheus: PrometheusServer) -> None:
    error = await query_error(prometheus.url, 'avg(azure_vm_cpu_percent{scale_set="no-such-set"})')
    assert error.reason == NO_DATA


async def test_nan_is_no_data(prometheus: PrometheusServer) -> None:
    assert (await query_error(prometheus.url, "vector(0) / 0")).reason == NO_DATA
    assert (await query_error(prometheus.url, "scalar(vector(1)) / 0")).reason == NO_DATA  # +Inf


async def test_several_series_are_ambiguous(scale_set: str, prometheus: PrometheusServer) -> None:
    query = f'azure_vm_cpu_percent{{scale_set="{SCALE_SET}"}}'
    await eventually_value(prometheus.url, f"count({query})", float(CAPACITY))
    error = await query_error(prometheus.url, query)
    assert error.reason == AMBIGUOUS_RESULT
    assert f"returned {CAPACITY} series" in error.message and "and 1 more" in error.message
    assert f'scale_set="{SCALE_SET}"' in error.message and "sum(...) or avg(...)" in error.message
    assert len(error.message) < 600


async def test_a_range_vector_is_unexpected(prometheus: PrometheusServer) -> None:
    error = await query_error(prometheus.url, "up[1m]")
    assert error.reason == UNEXPECTED_RESPONSE and "range vector" in error.message


async def test_a_closed_port_is_unreachable_within_the_timeout() -> None:
    server = f"http://reader:s3cret@127.0.0.1:{free_port()}"  # nothing listens there any more
    started = time.monotonic()
    error = await query_error(server, "vector(1)", timeout=2.0)
    assert time.monotonic() - started < 2.5
    assert error.reason == PROMETHEUS_UNREACHABLE and "127.0.0.1" in error.message
    assert "s3cret" not in str(error) and "reader" not in str(error)


async def test_a_server_that_never_answers_is_unreachable_after_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        error = await query_error(f"http://127.0.0.1:{silent.getsockname()[1]}", "vector(1)", timeout=0.5)
        elapsed = time.monotonic() - started
    assert error.reason == PROMETHEUS_UNREACHABLE and "did not answer within 0.5s" in error.message
    assert 0.4 < elapsed < 1.5


async def test_a_server_address_that_is_not_a_url_is_reported() -> None:
    error = await query_error("prometheus:9090", "vector(1)")
    assert error.reason == PROMETHEUS_UNREACHABLE and "not an http or https URL" in error.message
