"""Whether the standard `OTEL_*` variables ask for traces, and through which exporters.

Read as the OpenTelemetry SDK's own environment configuration reads them, narrowed to what
this image ships: the console exporter and OTLP over HTTP/protobuf (no gRPC stack).

- `OTEL_SDK_DISABLED=true` turns everything off, whatever else is set.
- `OTEL_TRACES_EXPORTER`: a comma-separated list of `otlp`, `console` or `none`.
- Unset, an OTLP endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_ENDPOINT`) means `otlp`; with neither, traces stay off.
"""

from __future__ import annotations

from collections.abc import Mapping

OTLP = "otlp"
CONSOLE = "console"
# The name the OTLP/HTTP exporter registers under in the SDK's entry points.
_ALIASES = {"otlp_proto_http": OTLP}
_SUPPORTED = frozenset({OTLP, CONSOLE})
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_SHIPPED_PROTOCOL = "http/protobuf"


class TracingSettingError(ValueError):
    """An `OTEL_*` variable asks for something this build cannot do; names the variable."""


def trace_exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters traces go to, empty when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    listed = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not listed:
        return (_checked_otlp(environ),) if any(environ.get(name) for name in _ENDPOINTS) else ()
    names = [_ALIASES.get(name, name) for name in _split(listed)]
    if "none" in names:
        return ()
    unknown = sorted(set(names) - _SUPPORTED)
    if unknown:
        raise TracingSettingError(
            f"OTEL_TRACES_EXPORTER={listed}: {', '.join(unknown)} is not available here; "
            f"use {OTLP}, {CONSOLE} or none"
        )
    if OTLP in names:
        _checked_otlp(environ)
    return tuple(dict.fromkeys(names))


def _split(listed: str) -> list[str]:
    return [name.strip().lower() for name in listed.split(",") if name.strip()]


def _checked_otlp(environ: Mapping[str, str]) -> str:
    for name in _PROTOCOLS:
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != _SHIPPED_PROTOCOL:
                raise TracingSettingError(
                    f"{name}={protocol}: only the {_SHIPPED_PROTOCOL} OTLP exporter is installed"
                )
            break
    return OTLP
