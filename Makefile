# Two entry points, both self-installing on a fresh machine (Python 3.11+ with venv and pip):
#   make demo   - the embedded Azure emulator + Kubernetes API + operator: a VM and a load-balanced ScaleSet
#                 from apply to delete
#   make test   - the whole test suite (what .ci/run calls)
# .venv gets four editable distributions: the operator (top-level pyproject.toml, the only one in `pip install .`
# and the Dockerfile) and, for the tests and the demo, emulator/, testing/kubeapi/ and testing/sandbox/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench kubectl

$(STAMP): pyproject.toml emulator/pyproject.toml testing/kubeapi/pyproject.toml testing/sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./emulator -e ./testing/kubeapi -e ./testing/sandbox
	touch $(STAMP)

install: $(STAMP) kubectl

# kubectl, for the tests that run the real binary against the test Kubernetes API (they skip without it).
# Debian's own archive has no "kubectl" package: apt-get finds it once the Kubernetes apt repository
# (pkgs.k8s.io) is configured; otherwise see docs/kubeapi.md for the fallback.
kubectl:
	@command -v kubectl >/dev/null || apt-get install -y kubectl || \
		echo "kubectl is not installed: the kubectl tests will be skipped (see docs/kubeapi.md)"

demo: $(STAMP)
	$(VENV)/bin/azvm-sandbox demo --crds crds --example examples/virtualmachine.yaml

test: $(STAMP) kubectl
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info operator/*.egg-info emulator/*.egg-info testing/*/*.egg-info
