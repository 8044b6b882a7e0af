# The operator image: `azure-vm-operator run` against the in-cluster API server and Azure.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install --no-cache-dir . && useradd --uid 65532 --no-create-home azvm
USER 65532
EXPOSE 8080
ENTRYPOINT ["azure-vm-operator"]
CMD ["run"]
