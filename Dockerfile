# One image for the API, the workers, the reconciler and the migration; the command decides
# which it is. Dependencies come only from the hash-locked requirements/runtime.txt.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Copied alone first so the dependency layer is rebuilt only when the lock changes.
COPY requirements/runtime.txt requirements/runtime.txt
# --no-deps: the lock already lists every transitive dependency, hashed; nothing unpinned
# may slip in through a package's own requirements.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
# --no-build-isolation builds with the locked setuptools instead of fetching an unpinned one.
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN groupadd --gid 10001 sweep \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin sweep
# Same base image and path as the builder, so the venv's interpreter links still resolve.
COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv
# Data files the installed package reads from outside site-packages (owned by root, read-only
# to the service user).
COPY alembic.ini ./
COPY migrations ./migrations
COPY workflows ./workflows
COPY params ./params
# Settings defaults point into the source tree, which the image does not have.
ENV DATA_DIR=/srv/var/data WORKFLOWS_DIR=/srv/workflows PARAMS_DIR=/srv/params
# Made here so a fresh named volume mounted on it starts owned by the service user.
RUN mkdir -p /srv/var/data /srv/var/metrics && chown -R sweep:sweep /srv/var
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK: the worker, reconciler and migration run this image too and do not serve
# HTTP; each service's check is in docker-compose.yml.
# Migrations are the `migrate` service's job (docker-compose.yml), never the API's start.
# app.serve is uvicorn with the overload guards from Settings (API_LIMIT_CONCURRENCY, ...).
CMD ["python", "-m", "app.serve", "--host", "0.0.0.0", "--port", "8000"]
