# Two entry points, both self-installing on a fresh machine (Python 3.11+ with venv and pip):
#   make demo   - the embedded Azure emulator + Kubernetes API + operator: a VM, a load-balanced ScaleSet and
#                 an autoscaled ScaleSet scaled out by a CPU spike, from apply to delete
#   make test   - the whole test suite (what .ci/run calls)
# Both install what they need: .venv, and for the tests the real binaries the suite runs (kubectl when its apt
# repository is configured; Prometheus, Debian's `prometheus` package: `make prometheus`, needs root and apt).
# .venv gets four editable distributions: the operator (top-level pyproject.toml, the only one in `pip install .`
# and the Dockerfile) and, for the tests and the demo, emulator/, testing/kubeapi/ and testing/sandbox/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench kubectl prometheus

$(STAMP): pyproject.toml emulator/pyproject.toml testing/kubeapi/pyproject.toml testing/sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./emulator -e ./testing/kubeapi -e ./testing/sandbox
	touch $(STAMP)

install: $(STAMP) kubectl prometheus

# kubectl, for the tests that run the real binary against the test Kubernetes API (they skip without it).
# Debian's own archive has no "kubectl" package: apt-get finds it once the Kubernetes apt repository
# (pkgs.k8s.io) is configured; otherwise see docs/kubeapi.md for the fallback.
kubectl:
	@command -v kubectl >/dev/null || apt-get install -y kubectl || \
		echo "kubectl is not installed: the kubectl tests will be skipped (see docs/kubeapi.md)"

# Prometheus, the real server (Debian's package), for the tests that scrape the emulator and query it
# (tests/e2e/test_prometheus_source.py): they fail without it, or skip when AZVM_ALLOW_MISSING_PROMETHEUS=1 (then a
# failed install here only warns). The tests start their own server on a free loopback port, so the install must not
# start the package's service (it would hold port 9090; without systemd, in a container, starting it fails): unless
# the machine has a policy-rc.d already (Docker images do), one that denies every start is in place for this install
# only. `apt-get update` runs only when the install fails (no or stale package index).
PROMETHEUS_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
prometheus:
	@command -v prometheus >/dev/null || { \
		policy=/usr/sbin/policy-rc.d; \
		if [ ! -e $$policy ]; then \
			trap 'rm -f '$$policy EXIT; printf '#!/bin/sh\nexit 101\n' >$$policy && chmod 755 $$policy; \
		fi; \
		$(PROMETHEUS_INSTALL) || { apt-get update && $(PROMETHEUS_INSTALL); } || \
		if [ "$$AZVM_ALLOW_MISSING_PROMETHEUS" = 1 ]; then \
			echo "prometheus is not installed: its tests will be skipped (AZVM_ALLOW_MISSING_PROMETHEUS=1)"; \
		else \
			echo "could not install Debian's prometheus package (root and apt needed); to run the tests without it:" \
				"AZVM_ALLOW_MISSING_PROMETHEUS=1 make test" >&2; exit 1; \
		fi; \
	}

demo: $(STAMP)
	$(VENV)/bin/azvm-sandbox demo --crds crds --example examples/virtualmachine.yaml

test: $(STAMP) kubectl prometheus
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=30

clean:
	rm -rf $(VENV) build *.egg-info operator/*.egg-info emulator/*.egg-info testing/*/*.egg-info
