"""The operator's sandbox: the Azure emulator, the Kubernetes API and the operator together, for tests and the demo.

Its own distribution (``azvm-sandbox``), never part of the operator's install. :mod:`.harness` starts the three
(each on its own event loop thread), :mod:`.demo` is ``azvm-sandbox demo``, :mod:`.crds` loads the CRDs from a
folder, :mod:`.apidocs` generates docs/api.md from them. Nothing here finds files through its own location: the
CRD folder and the example manifest are passed in.
"""
