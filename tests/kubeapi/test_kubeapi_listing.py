"""Listing: label selectors (equality and set-based), field selectors, paging, list kind and resourceVersion."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiException

from kubeapi import KubeAPIServer
from kubeapi.selectors import parse_label_selector
from kubeapi_helpers import GROUP, PLURAL, VERSION, WIDGETS, call, widget

pytestmark = pytest.mark.usefixtures("crd")


@pytest.fixture
def labelled(api: KubeAPIServer, crd: Any) -> None:
    rt = api.registry.lookup(GROUP, VERSION, PLURAL)
    for name, labels in [("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev", "tier": "web"}),
                         ("c", {"env": "test"}), ("d", {})]:
        body = widget(name)
        body["metadata"]["labels"] = labels
        api.registry.create(rt, "default", body)


async def names(custom: Any, **kwargs: Any) -> list[str]:
    result = await call(custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, **kwargs)
    return [i["metadata"]["name"] for i in result["items"]]


@pytest.mark.usefixtures("labelled")
@pytest.mark.parametrize("selector, expected", [
    ("env=prod", ["a"]),
    ("env==prod", ["a"]),
    ("env!=prod", ["b", "c", "d"]),
    ("env in (prod,dev)", ["a", "b"]),
    ("env notin (prod, dev)", ["c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("tier=web,env!=dev", ["a"]),
    ("env in (prod,dev),!tier", []),
])
async def test_label_selectors(custom: Any, selector: str, expected: list[str]) -> None:
    assert await names(custom, label_selector=selector) == expected


@pytest.mark.usefixtures("labelled")
async def test_field_selectors(custom: Any, http: Any) -> None:
    assert await names(custom, field_selector="metadata.name=b") == ["b"]
    assert await names(custom, field_selector="metadata.name!=b,metadata.namespace=default") == ["a", "c", "d"]
    with pytest.raises(ApiException) as e:
        await names(custom, field_selector="spec.location=x")
    assert e.value.status == 400 and "field label not supported: spec.location" in e.value.body
    async with http.get(f"/apis/{GROUP}/{VERSION}/{PLURAL}", params={"labelSelector": "a in (b"}) as r:
        assert r.status == 400


async def test_list_kind_version_and_resource_version(api: KubeAPIServer, http: Any) -> None:
    async with http.get(WIDGETS) as r:
        listing = await r.json()
    assert listing["kind"] == "WidgetList" and listing["apiVersion"] == f"{GROUP}/{VERSION}"
    assert listing["metadata"]["resourceVersion"] == str(api.store.rv)
    async with http.get("/api/v1/namespaces") as r:
        listing = await r.json()
    assert listing["kind"] == "NamespaceList" and listing["apiVersion"] == "v1"


async def test_paging(api: KubeAPIServer, custom: Any) -> None:
    rt = api.registry.lookup(GROUP, VERSION, PLURAL)
    for i in range(7):
        api.registry.create(rt, "default", widget(f"w{i}"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": 3}
        if token:
            kwargs["_continue"] = token
        page = await call(custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, **kwargs)
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 7 - len(seen)
    assert pages == 3 and seen == [f"w{i}" for i in range(7)]


def test_selector_parser_rejects_garbage() -> None:
    from kubeapi.errors import APIError

    for bad in ("a in (b", "a b", "=x", "a=b c"):
        with pytest.raises(APIError):
            parse_label_selector(bad)
