"""Which standard OTEL_* settings turn tracing on, and through which exporters."""

from __future__ import annotations

import pytest

from app.telemetry.switch import TracingSettingError, trace_exporters

ENDPOINT = "http://collector:4318"


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, ()),
        ({"OTEL_SERVICE_NAME": "api"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp, Console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "otlp_proto_http"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ()),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, ()),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ()),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, ("console",)),
    ],
)
def test_the_standard_variables_pick_the_exporters(
    environ: dict[str, str], exporters: tuple[str, ...]
) -> None:
    assert trace_exporters(environ) == exporters


def test_an_exporter_this_build_lacks_is_refused_by_name() -> None:
    with pytest.raises(TracingSettingError, match=r"OTEL_TRACES_EXPORTER=zipkin: zipkin"):
        trace_exporters({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_otlp_over_grpc_is_refused_naming_the_variable() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(TracingSettingError, match="OTEL_EXPORTER_OTLP_PROTOCOL=grpc"):
        trace_exporters(environ)


def test_the_traces_protocol_overrides_the_general_one() -> None:
    environ = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert trace_exporters(environ) == ("otlp",)


def test_a_protocol_matters_only_to_otlp() -> None:
    environ = {"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert trace_exporters(environ) == ("console",)
