# syntax=docker/dockerfile:1
# One image for every Suivi service; the command chooses the service (deploy/k8s/base/<service>.yaml):
#   docker build -t suivi .
#   docker run --rm -p 8003:8003 -e DATABASE_URL=... -e NATS_URL=... suivi \
#     uvicorn services.tracking.app:create_app --factory --host 0.0.0.0 --port 8003
# `pip install .`: the runtime dependencies of pyproject.toml, not the dev extras (no nats-server, no
# PostgreSQL, no test tools); the SQL migrations, templates, stylesheets and locales are package data.
# Pin the base images by digest (python:3.11-slim-bookworm@sha256:...) for a reproducible build.
ARG PYTHON_VERSION=3.11

# Build: a virtual environment with Suivi and its dependencies. The full image has the compilers a
# dependency without a wheel for the platform would need; none of it reaches the runtime image.
FROM python:${PYTHON_VERSION}-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/suivi
WORKDIR /src
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN /opt/suivi/bin/pip install . \
    && /opt/suivi/bin/pip uninstall --yes pip

# Runtime: the slim image, the environment, the procedure definitions, a user without a shell or a home.
FROM python:${PYTHON_VERSION}-slim-bookworm
RUN groupadd --system --gid 10001 suivi \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin suivi
COPY --from=build /opt/suivi /opt/suivi
# The definitions the image was built with; Kubernetes mounts the ConfigMap suivi-procedures over them.
COPY procedures /app/procedures
ENV PATH=/opt/suivi/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROCEDURES_DIR=/app/procedures \
    GAZETTEER_FILE=/app/procedures/streets.csv
WORKDIR /app
USER 10001:10001
EXPOSE 8001 8002 8003 8004 8005
# No service by default: the command says which (above), or `python -m shared.migrate <service>`.
CMD ["python", "-m", "shared.migrate", "--help"]
