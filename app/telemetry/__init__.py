"""OpenTelemetry traces of a sweep's path, API request → Celery task → ComfyUI call, off unless
the standard `OTEL_*` variables ask for them (`switch`), set up once per process (`tracing`).

Off, nothing is installed, not even imported: FastAPI finds no tracer provider and makes no
spans, Celery's signals and httpx's transports stay as they are."""
