"""A small Kubernetes API server (kube-apiserver semantics, in memory) for tests and the demo.

Why not kmock: kmock 0.8 matches every request against the whole request history (quadratic: 200 objects
take ~87 s) and lacks resourceVersion/uid/generation, spec/status separation, watch resumption, 422 on a
failed JSON-patch ``test``, generateName, the scale subresource, schema validation, CRD registration,
selectors, paging and bookmarks/410. Kopf relies on most of these. This package is one component with O(1)
dict storage and kube-apiserver semantics instead; see docs/kubeapi.md for what is and is not covered.

Usage::

    from kubeapi import KubeAPIServer
    api = KubeAPIServer(token=None)
    await api.start(host="127.0.0.1", port=0)
    api.write_kubeconfig(path)
    api.register_crd(crd_dict)
    api.get_object(group, version, plural, namespace, name)
    await api.stop()

Standalone: ``python -m kubeapi --port 8001 --kubeconfig /tmp/kubeconfig``.

Modules: :mod:`.server` (aiohttp app, routing, watch streams), :mod:`.registry` (REST semantics),
:mod:`.store` (objects, resourceVersion, event history, watchers), :mod:`.schema` (structural schemas,
pruning, defaulting, validation, CEL), :mod:`.managedfields` (managedFields, server-side apply, conflicts,
the scale handler) over :mod:`.typed` and :mod:`.fieldpath` (structured-merge-diff's typed walks and field
sets), :mod:`.patch`, :mod:`.selectors`, :mod:`.discovery`, :mod:`.resources`, :mod:`.tables`, :mod:`.errors`. Its own distribution (``azvm-kubeapi``): nothing here imports
the operator (``azure_vm_operator``).
"""

from .errors import APIError
from .server import KubeAPIServer

__all__ = ["KubeAPIServer", "APIError"]
