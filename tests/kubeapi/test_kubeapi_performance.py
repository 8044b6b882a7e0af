"""Several hundred objects with open watches stay fast (O(1) per request, no history scans)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from kubeapi import KubeAPIServer
from kubeapi_helpers import GROUP, PLURAL, VERSION, WIDGETS, widget

pytestmark = pytest.mark.usefixtures("crd")

N = 400


async def test_hundreds_of_objects_with_watches(api: KubeAPIServer, http: Any) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    watches = [await http.get(WIDGETS, params={"watch": "true"}) for _ in range(3)]
    try:
        semaphore = asyncio.Semaphore(20)

        async def create(i: int) -> None:
            async with semaphore:
                async with http.post(WIDGETS, json=widget(f"w{i}")) as r:
                    assert r.status == 201
                async with http.patch(f"{WIDGETS}/w{i}/status", json={"status": {"phase": "Running"}},
                                      headers={"Content-Type": "application/merge-patch+json"}) as r:
                    assert r.status == 200

        await asyncio.gather(*(create(i) for i in range(N)))
        for response in watches:
            seen = 0
            while seen < 2 * N:
                line = await asyncio.wait_for(response.content.readline(), 5)
                assert json.loads(line)["type"] in ("ADDED", "MODIFIED")
                seen += 1
        async with http.get(WIDGETS) as r:
            assert len((await r.json())["items"]) == N
    finally:
        for response in watches:
            response.close()
    elapsed = loop.time() - started
    assert elapsed < 20, f"{N} objects took {elapsed:.1f}s"
    assert api.get_object(GROUP, VERSION, PLURAL, "default", f"w{N - 1}")["status"]["phase"] == "Running"
