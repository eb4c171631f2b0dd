# syntax=docker/dockerfile:1.7
# One image for the monitor (`driftwatch serve`) and the capture sidecar (`driftwatch sidecar`).
# Not built in CI (no container engine there); see docs/deploy.md.
#
#   docker build -t ghcr.io/driftwatch/driftwatch:0.1.0 .
#   docker run --rm -p 8080:8080 -v $PWD/examples:/etc/driftwatch:ro ghcr.io/driftwatch/driftwatch:0.1.0
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: wheels for driftwatch and every dependency (compilers live only here) ---------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY dashboards ./dashboards
COPY alerts ./alerts
COPY retrain ./retrain
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed, nothing else -------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels driftwatch \
    && groupadd --system --gid 10001 driftwatch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/driftwatch \
       --shell /usr/sbin/nologin driftwatch \
    && install -d -o 10001 -g 10001 /var/lib/driftwatch /var/spool/driftwatch /etc/driftwatch
# Numeric so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/driftwatch
# 8080: monitor (API, /metrics, /healthz, /readyz). 8081: sidecar (driftwatch-capture).
EXPOSE 8080 8081
# No HEALTHCHECK: the monitor and the sidecar answer on different paths and ports, and Kubernetes
# ignores it; the chart and `driftwatch inject` set the probes.
ENTRYPOINT ["driftwatch"]
CMD ["serve", "--config", "/etc/driftwatch/config.yaml", "--host", "0.0.0.0", "--port", "8080"]
