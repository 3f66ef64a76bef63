# syntax=docker/dockerfile:1
# Container image of recharge-autoscaler: the controller (`run`) and the forecast job (`forecast-job`).
#
#   docker build -t recharge-autoscaler:0.1.0 .
#
# Two stages: the builder turns the project and its pinned dependencies (requirements.lock) into wheels;
# the runtime stage installs only those wheels, has no compilers or package caches, and runs as uid 10001
# with a read-only root filesystem in mind (writable state goes to /tmp, an emptyDir in the Helm chart).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers only for the rare dependency without a manylinux wheel; they never reach the runtime stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.lock ./
RUN pip wheel --wheel-dir /wheels --requirement requirements.lock
COPY pyproject.toml setup.cfg README.md ./
COPY forecaster ./forecaster
COPY controller ./controller
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="recharge-autoscaler" \
      org.opencontainers.image.description="Predictive autoscaling for the recharge service" \
      org.opencontainers.image.licenses="MIT"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib TMPDIR=/tmp
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.lock,target=/requirements.lock \
    pip install --no-index --find-links /wheels --constraint /requirements.lock recharge-autoscaler \
 && groupadd --system --gid 10001 autoscaler \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin autoscaler
WORKDIR /tmp
USER 10001:10001
# /healthz + /readyz, /metrics (controller.healthPort, controller.metricsPort)
EXPOSE 8080 9090
ENTRYPOINT ["recharge-autoscaler"]
CMD ["--help"]
