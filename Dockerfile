# syntax=docker/dockerfile:1
# The operator image: `azure-vm-operator run` against the in-cluster API server and Azure. Two stages: the build
# stage installs the operator's distribution alone (the top-level pyproject.toml; never emulator/ or testing/) into a
# virtualenv; the runtime stage copies that virtualenv onto the same slim base, with no compiler, pip cache or source.
# tests/image/ runs this file's install steps in a fresh venv and checks the rules below (USER, tags, labels ...).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="azure-vm-operator" \
      org.opencontainers.image.description="Azure Virtual Machines and VM Scale Sets as Kubernetes custom resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"
COPY --from=build /opt/venv /opt/venv
# Read-only root friendly: nothing is written at run time (bytecode compiled at build, HOME and temp files in /tmp,
# an emptyDir in the Helm chart).
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp \
    AZVM_METRICS_PORT=8080 AZVM_HEALTH_PORT=8081
# A numeric non-root user (no passwd entry needed): runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080 8081
# Kubernetes ignores HEALTHCHECK: the Helm chart's liveness and readiness probes use /healthz and /readyz on 8081.
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=2)"]
ENTRYPOINT ["azure-vm-operator"]
CMD ["run"]
