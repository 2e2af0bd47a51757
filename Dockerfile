# One image for the API and the workers; the command decides which it is.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv
RUN useradd --create-home --uid 10001 sweep
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
RUN pip install --no-cache-dir .
COPY alembic.ini ./
COPY migrations ./migrations
COPY workflows ./workflows
COPY params ./params
RUN mkdir -p /srv/var/data && chown -R sweep /srv/var
USER sweep
ENV DATA_DIR=/srv/var/data WORKFLOWS_DIR=/srv/workflows PARAMS_DIR=/srv/params
EXPOSE 8000
CMD ["sh", "-c", "alembic upgrade head && exec uvicorn app.main:create_app --factory --host 0.0.0.0 --port 8000 --proxy-headers"]
