"""Watches: initial ADDED, resumption from a resourceVersion, 410 Gone, bookmarks, selectors, timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import kubernetes
import pytest

from kubeapi import KubeAPIServer
from kubeapi_helpers import GROUP, KIND, PLURAL, VERSION, WIDGETS, call, make_crd, widget

pytestmark = pytest.mark.usefixtures("crd")


class Stream:
    """Reads a watch response line by line, with a deadline per event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 3.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.response.content.readline(), timeout)
        assert line, "the watch stream ended"
        return json.loads(line)

    async def take(self, n: int, *, skip_bookmarks: bool = True) -> list[dict[str, Any]]:
        events = []
        while len(events) < n:
            event = await self.next()
            if skip_bookmarks and event["type"] == "BOOKMARK":
                continue
            events.append(event)
        return events


def rt(api: KubeAPIServer) -> Any:
    return api.registry.lookup(GROUP, VERSION, PLURAL)


def create(api: KubeAPIServer, name: str, **kw: Any) -> dict[str, Any]:
    body = widget(name)
    body["metadata"].update(kw)
    return api.registry.create(rt(api), "default", body)


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


async def test_watch_without_version_sends_current_objects_then_live(api: KubeAPIServer, http: Any) -> None:
    create(api, "a")
    create(api, "b")
    async with http.get(WIDGETS, params={"watch": "true"}) as r:
        assert r.status == 200
        stream = Stream(r)
        assert summary(await stream.take(2)) == [("ADDED", "a"), ("ADDED", "b")]
        create(api, "c")
        api.registry.patch(rt(api), "default", "a", "application/merge-patch+json", {"spec": {"size": 2}}, None)
        api.registry.delete(rt(api), "default", "b", None)
        events = await stream.take(3)
        assert summary(events) == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs)
        assert events[0]["object"]["apiVersion"] == f"{GROUP}/{VERSION}" and events[0]["object"]["kind"] == KIND


async def test_watch_resumes_exactly_after_the_resource_version(api: KubeAPIServer, http: Any) -> None:
    create(api, "a")
    async with http.get(WIDGETS) as r:
        listing = await r.json()
    list_rv = listing["metadata"]["resourceVersion"]
    create(api, "b")
    mid = api.registry.patch(rt(api), "default", "a", "application/merge-patch+json", {"spec": {"size": 3}}, None)
    api.registry.delete(rt(api), "default", "b", None)
    async with http.get(WIDGETS, params={"watch": "1", "resourceVersion": list_rv}) as r:
        events = await Stream(r).take(3)
    assert summary(events) == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    async with http.get(WIDGETS, params={"watch": "1", "resourceVersion": mid["metadata"]["resourceVersion"]}) as r:
        assert summary(await Stream(r).take(1)) == [("DELETED", "b")]


async def test_no_events_lost_between_list_and_watch(api: KubeAPIServer, http: Any) -> None:
    created: set[str] = set()

    async def writer() -> None:
        for i in range(60):
            created.add(create(api, f"w{i}")["metadata"]["name"])
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.001)
    async with http.get(WIDGETS) as r:
        listing = await r.json()
    seen = {i["metadata"]["name"] for i in listing["items"]}
    async with http.get(WIDGETS, params={"watch": "true",
                                         "resourceVersion": listing["metadata"]["resourceVersion"]}) as r:
        await task
        stream = Stream(r)
        for event in await stream.take(60 - len(seen)):
            assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] not in seen
            seen.add(event["object"]["metadata"]["name"])
    assert seen == created


async def test_too_old_resource_version_is_410_gone() -> None:
    server = KubeAPIServer(history_size=3)
    await server.start()
    try:
        server.register_crd(make_crd())
        first = create(server, "w0")
        for i in range(1, 10):
            create(server, f"w{i}")
        async with aiohttp.ClientSession(base_url=server.url) as http:
            params = {"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}
            async with http.get(WIDGETS, params=params) as r:
                stream = Stream(r)
                event = await stream.next()
                assert event["type"] == "ERROR"
                assert event["object"]["kind"] == "Status" and event["object"]["code"] == 410
                assert event["object"]["reason"] == "Expired"
                assert await r.content.readline() == b""  # and the stream ends.
    finally:
        await server.stop()


async def test_bookmarks(api: KubeAPIServer, http: Any) -> None:
    create(api, "a")
    async with http.get(WIDGETS, params={"watch": "true", "allowWatchBookmarks": "true"}) as r:
        stream = Stream(r)
        assert (await stream.next())["type"] == "ADDED"
        create(api, "b")
        assert (await stream.next())["type"] == "ADDED"
        bookmark = await stream.next(timeout=2)
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"] == {"kind": KIND, "apiVersion": f"{GROUP}/{VERSION}",
                                      "metadata": {"resourceVersion": str(api.store.rv)}}
    async with http.get(WIDGETS, params={"watch": "true"}) as r:  # no bookmarks unless allowed.
        stream = Stream(r)
        assert (await stream.next())["type"] == "ADDED"
        assert (await stream.next())["type"] == "ADDED"
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0.6)


async def test_send_initial_events_ends_with_a_marked_bookmark(api: KubeAPIServer, http: Any) -> None:
    create(api, "a")
    params = {"watch": "true", "allowWatchBookmarks": "true", "sendInitialEvents": "true",
              "resourceVersionMatch": "NotOlderThan"}
    async with http.get(WIDGETS, params=params) as r:
        stream = Stream(r)
        assert (await stream.next())["type"] == "ADDED"
        bookmark = await stream.next()
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_timeout_seconds_ends_the_stream(http: Any) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(WIDGETS, params={"watch": "true", "timeoutSeconds": "1"}) as r:
        assert await asyncio.wait_for(r.content.read(), 5) == b""
    assert 0.9 <= loop.time() - started < 3


async def test_label_selector_on_watch_translates_transitions(api: KubeAPIServer, http: Any) -> None:
    create(api, "a", labels={"app": "x"})
    create(api, "b", labels={"app": "y"})
    async with http.get(WIDGETS, params={"watch": "true", "labelSelector": "app=x"}) as r:
        stream = Stream(r)
        assert summary(await stream.take(1)) == [("ADDED", "a")]
        merge = "application/merge-patch+json"
        api.registry.patch(rt(api), "default", "b", merge, {"metadata": {"labels": {"app": "x"}}}, None)
        api.registry.patch(rt(api), "default", "a", merge, {"metadata": {"labels": {"app": "z"}}}, None)
        api.registry.patch(rt(api), "default", "b", merge, {"spec": {"size": 4}}, None)
        assert summary(await stream.take(3)) == [("ADDED", "b"), ("DELETED", "a"), ("MODIFIED", "b")]


async def test_namespaced_watch_filters_other_namespaces(api: KubeAPIServer, http: Any) -> None:
    api.registry.create(api.registry.ns_type, None, {"metadata": {"name": "other"}})
    api.registry.create(rt(api), "other", widget("elsewhere"))
    create(api, "here")
    async with http.get(WIDGETS, params={"watch": "true"}) as r:
        assert summary(await Stream(r).take(1)) == [("ADDED", "here")]
    async with http.get(f"/apis/{GROUP}/{VERSION}/{PLURAL}", params={"watch": "true"}) as r:
        names = {e["object"]["metadata"]["name"] for e in await Stream(r).take(2)}
        assert names == {"here", "elsewhere"}


async def test_kubernetes_client_watch(api: KubeAPIServer, client: Any, custom: Any) -> None:
    create(api, "a")
    listing = await call(custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL)

    def watch_three() -> list[tuple[str, str]]:
        w = kubernetes.watch.Watch()
        out = []
        for event in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
                              resource_version=listing["metadata"]["resourceVersion"], timeout_seconds=5):
            out.append((event["type"], event["object"]["metadata"]["name"]))
            if len(out) == 3:
                w.stop()
        return out

    watching = asyncio.create_task(asyncio.to_thread(watch_three))
    await asyncio.sleep(0.2)
    create(api, "b")
    create(api, "c")
    api.registry.delete(rt(api), "default", "a", None)
    assert await asyncio.wait_for(watching, 10) == [("ADDED", "b"), ("ADDED", "c"), ("DELETED", "a")]
