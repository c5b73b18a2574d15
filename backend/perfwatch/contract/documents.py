"""JSON Schemas (draft 2020-12) of the metric documents, one per metric type: what the sampler
writes and what queries may name (``docs/metrics.md``).

Plain dictionaries, so the API can embed them in OpenAPI; perfwatch itself never validates at
runtime (the tests do, with the ``jsonschema`` dev dependency). ``schema_version`` is a const:
a breaking change to a document bumps ``SCHEMA_VERSION`` and gets a new schema.
"""

from __future__ import annotations

from typing import Any

# The version every document carries in ``schema_version``; a breaking change bumps it.
SCHEMA_VERSION = 1

DIALECT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _count() -> Schema:
    return {"type": "integer", "minimum": 0}


def _bytes() -> Schema:
    return {"type": "integer", "minimum": 0}


def _rate() -> Schema:
    """A per-second rate: null on the first sample or after a counter reset, never negative."""
    return _nullable({"type": "number", "minimum": 0})


def _percent() -> Schema:
    return {"type": "number", "minimum": 0, "maximum": 100}


def _object(properties: dict[str, Schema], *, closed: bool = True, **extra: Any) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
    }
    if closed:
        schema["additionalProperties"] = False
    schema.update(extra)
    return schema


def _document(metric_type: str, description: str, properties: dict[str, Schema]) -> Schema:
    schema = _object({"schema_version": {"const": SCHEMA_VERSION}, **properties})
    return {
        "$schema": DIALECT,
        "$id": f"https://perfwatch.invalid/schemas/metrics/{metric_type}/v{SCHEMA_VERSION}",
        "title": f"{metric_type} metric document",
        "description": description,
        **schema,
    }


_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "description": "ISO 8601, UTC (Z suffix)"}

CPU: Schema = _document(
    "cpu",
    "CPU utilisation, load and event rates; percentages are null on the first sample.",
    {
        "percent": _nullable(_percent()),
        "per_core": {"type": "array", "items": _nullable(_percent())},
        "times_percent": {
            "type": "object",
            "properties": {
                name: _nullable(_percent())
                for name in ("user", "nice", "system", "idle", "iowait", "irq", "softirq")
            }
            | {name: _nullable(_percent()) for name in ("steal", "guest")},
            "required": ["user", "system", "idle"],
            "additionalProperties": _nullable(_percent()),
        },
        "load_average": _nullable(
            _object({k: _nullable({"type": "number", "minimum": 0}) for k in ("1m", "5m", "15m")})
        ),
        "ctx_switches_per_s": _rate(),
        "interrupts_per_s": _rate(),
        "soft_interrupts_per_s": _rate(),
        "count_logical": _nullable({"type": "integer", "minimum": 1}),
        "count_physical": _nullable({"type": "integer", "minimum": 1}),
        "frequency_mhz": _nullable(
            _object(
                {k: _nullable({"type": "number", "minimum": 0}) for k in ("current", "min", "max")}
            )
        ),
    },
)

MEMORY: Schema = _document(
    "memory",
    "Virtual memory and swap in bytes; swap-in/out rates in bytes per second.",
    {
        "virtual": _object(
            {
                "total_bytes": _bytes(),
                "available_bytes": _bytes(),
                "used_bytes": _bytes(),
                "free_bytes": _bytes(),
                "buffers_bytes": _nullable(_bytes()),
                "cached_bytes": _nullable(_bytes()),
                "shared_bytes": _nullable(_bytes()),
                "percent": _percent(),
            }
        ),
        "swap": _nullable(
            _object(
                {
                    "total_bytes": _bytes(),
                    "used_bytes": _bytes(),
                    "free_bytes": _bytes(),
                    "percent": _percent(),
                    "sin_bytes_per_s": _rate(),
                    "sout_bytes_per_s": _rate(),
                }
            )
        ),
    },
)

DISK: Schema = _document(
    "disk",
    "Per-device I/O rates, and filesystem usage refreshed every sampler.interval.disk_usage.",
    {
        "io": {
            "type": "object",
            "additionalProperties": _object(
                {
                    "read_bytes_per_s": _rate(),
                    "write_bytes_per_s": _rate(),
                    "read_iops": _rate(),
                    "write_iops": _rate(),
                    "busy_percent": _nullable(_percent()),
                }
            ),
        },
        "usage": {
            "type": "array",
            "items": _object(
                {
                    "device": _STRING,
                    "mountpoint": _STRING,
                    "fstype": _STRING,
                    "total_bytes": _bytes(),
                    "used_bytes": _bytes(),
                    "free_bytes": _bytes(),
                    "percent": _percent(),
                }
            ),
        },
        "usage_collected_at": _nullable(_TIMESTAMP),
    },
)

_TCP_STATES = (
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
)

NETWORK: Schema = _document(
    "network",
    "Per-interface rates (per second), a socket summary every sample, and socket counts by TCP"
    " state refreshed every sampler.interval.connections.",
    {
        "interfaces": {
            "type": "object",
            "additionalProperties": _object(
                {
                    "bytes_sent_per_s": _rate(),
                    "bytes_recv_per_s": _rate(),
                    "packets_sent_per_s": _rate(),
                    "packets_recv_per_s": _rate(),
                    "errin_per_s": _rate(),
                    "errout_per_s": _rate(),
                    "dropin_per_s": _rate(),
                    "dropout_per_s": _rate(),
                    "is_up": _nullable({"type": "boolean"}),
                }
            ),
        },
        "sockets": _nullable(
            _object(
                {
                    "tcp_in_use": _count(),
                    "tcp_established": _count(),
                    "tcp_time_wait": _count(),
                    "tcp_orphan": _count(),
                    "udp_in_use": _count(),
                }
            )
        ),
        "connections": _nullable(
            _object(
                {
                    "tcp": {
                        "type": "object",
                        "properties": {state: _count() for state in _TCP_STATES},
                        "required": list(_TCP_STATES),
                        "additionalProperties": _count(),
                    },
                    "tcp_total": _count(),
                    "udp_total": _count(),
                    "total": _count(),
                }
            )
        ),
        "connections_collected_at": _nullable(_TIMESTAMP),
    },
)

_PROCESS = _object(
    {
        "pid": _count(),
        "name": _nullable(_STRING),
        "username": _nullable(_STRING),
        # 100 = one core fully busy; a multi-threaded process can exceed 100.
        "cpu_percent": _nullable({"type": "number", "minimum": 0}),
        "memory_percent": _nullable(_percent()),
        "rss_bytes": _bytes(),
        "num_threads": _nullable(_count()),
        "status": _nullable(_STRING),
        "cmdline": _nullable({"type": "string", "maxLength": 256}),
    }
)

PROCESSES: Schema = _document(
    "processes",
    "Process counts by status and the top-N processes by CPU and by resident memory.",
    {
        "total": _count(),
        "threads_total": _nullable(_count()),
        "by_status": {
            "type": "object",
            "properties": {
                s: _count()
                for s in ("running", "sleeping", "disk-sleep", "idle", "stopped", "zombie")
            },
            "required": ["running", "sleeping", "idle", "stopped", "zombie"],
            "additionalProperties": _count(),
        },
        "top_cpu": {"type": "array", "items": _PROCESS},
        "top_memory": {"type": "array", "items": _PROCESS},
    },
)

SYSTEM: Schema = _document(
    "system",
    "Identity and uptime of the observed host.",
    {
        "hostname": {"type": "string", "minLength": 1},
        "os": _STRING,
        "os_pretty_name": _nullable(_STRING),
        "kernel": _nullable(_STRING),
        "architecture": _nullable(_STRING),
        "boot_time": _nullable(_TIMESTAMP),
        "uptime_seconds": _nullable(_count()),
        "users": {
            "type": "array",
            "items": _object(
                {
                    "name": _STRING,
                    "terminal": _nullable(_STRING),
                    "host": _nullable(_STRING),
                    "started": _nullable(_TIMESTAMP),
                }
            ),
        },
        "cpu_count_logical": _nullable({"type": "integer", "minimum": 1}),
        "cpu_count_physical": _nullable({"type": "integer", "minimum": 1}),
        "memory_total_bytes": _nullable(_bytes()),
        "python_version": _STRING,
        "perfwatch_version": _STRING,
        "in_container": {"type": "boolean"},
    },
)

_TEMPERATURE = _object(
    {
        "label": _STRING,
        # Celsius; can be negative outdoors, so no minimum.
        "current_c": _nullable({"type": "number"}),
        "high_c": _nullable({"type": "number"}),
        "critical_c": _nullable({"type": "number"}),
    }
)

SENSORS: Schema = _document(
    "sensors",
    "Temperatures (Celsius), fan speeds (RPM) by chip, and the battery (null when none).",
    {
        "temperatures": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": _TEMPERATURE},
        },
        "fans": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": _object({"label": _STRING, "rpm": _nullable(_count())}),
            },
        },
        "battery": _nullable(
            _object(
                {
                    "percent": _nullable(_percent()),
                    "secs_left": _nullable(_count()),
                    "power_plugged": _nullable({"type": "boolean"}),
                }
            )
        ),
    },
)

SCHEMAS: dict[str, Schema] = {
    "cpu": CPU,
    "memory": MEMORY,
    "disk": DISK,
    "network": NETWORK,
    "processes": PROCESSES,
    "system": SYSTEM,
    "sensors": SENSORS,
}
