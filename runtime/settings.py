"""Process settings from the environment (`GREY_*`), with the embedded defaults."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
_TENANT = re.compile(r"^[A-Za-z0-9-]{1,64}$")  # as runtime/services/auth.py's TENANT_PATTERN


def _default_database_url() -> str:
    home = Path(os.environ.get("GREY_HOME", ".grey"))
    return f"sqlite:///{home / 'grey.db'}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a gateway or worker process needs to start.

    The defaults are the embedded platform: a SQLite file under `GREY_HOME` (./.grey) and
    in-process Dramatiq workers, so `make run` needs no server.
    """

    database_url: str = field(default_factory=_default_database_url)
    broker_url: str = "embedded"
    rate_limit_storage_url: str = "memory://"
    cluster_config: Path | None = None
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 4100
    max_body_bytes: int = MIB
    token_ttl_seconds: int = 900
    credential_cache_seconds: float = 5.0
    blocking_threads: int = 16
    # In-process worker threads of `grey serve` (its cpu pool). None: the cluster config's
    # cpu threads_per_node with the embedded broker, none with Redis/RabbitMQ (run
    # `grey worker` there). 0: no in-process pool.
    worker_threads: int | None = None
    # On SIGTERM: stop accepting, end streams, and exit within this many seconds (below
    # Kubernetes' default 30 s termination grace).
    shutdown_grace_seconds: float = 20.0
    # The APIs `grey serve` serves (`GREY_APIS=grey,...`); None: every API of the build.
    apis: tuple[str, ...] | None = None
    # Per-API listener ports, `<api>_rest` / `<api>_grpc` (`GREY_<API>_REST_PORT`, ...);
    # Grey's own are rest_port and grpc_port.
    api_ports: dict[str, int] = field(default_factory=dict)
    # Per-API REST base path (`GREY_<API>_BASE_PATH`, e.g. `/openmcp`): APIs given the same
    # port are told apart by it. Empty: the API answers at the root of its listener.
    api_base_paths: dict[str, str] = field(default_factory=dict)
    # Per-API tenant that calls without credentials act as (`GREY_<API>_ANONYMOUS_TENANT`, e.g.
    # `GREY_CLOUDAI_ANONYMOUS_TENANT=acme`): for an API served to a trusted network. Only an API
    # whose contract allows it (CloudAI) accepts one; calls with a credential are still checked.
    anonymous_tenants: dict[str, str] = field(default_factory=dict)
    # The hosts the `api_caller` task function may call (`GREY_API_CALL_ALLOWED_HOSTS`,
    # comma-separated `host` or `host:port`); empty: none.
    api_call_allowed_hosts: tuple[str, ...] = ()
    # Transport security (runtime/gateway/tls.py): with a certificate, every listener serves
    # TLS (REST over HTTPS, gRPC over TLS with ALPN h2). `GREY_TLS_CERT_FILE` is the PEM chain
    # (server certificate first), `GREY_TLS_KEY_FILE` its PEM private key (None: in the
    # chain's file). `GREY_TLS_CLIENT_CA_FILE` turns on mutual TLS for gRPC: clients present a
    # certificate signed by a CA of that PEM bundle; `GREY_TLS_CLIENT_CERT` is `required` (the
    # default: a client without one is refused at the handshake) or `optional` (checked when
    # presented). `grey certs dev` makes a local CA and both certificates to try it.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    tls_client_cert: str = "required"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        strings = {
            "database_url": "GREY_DATABASE_URL",
            "broker_url": "GREY_BROKER_URL",
            "rate_limit_storage_url": "GREY_RATE_LIMIT_STORAGE_URL",
            "rest_host": "GREY_REST_HOST",
            "grpc_host": "GREY_GRPC_HOST",
        }
        numbers = {
            "rest_port": "GREY_REST_PORT",
            "grpc_port": "GREY_GRPC_PORT",
            "max_body_bytes": "GREY_MAX_BODY_BYTES",
            "token_ttl_seconds": "GREY_TOKEN_TTL_SECONDS",
            "blocking_threads": "GREY_BLOCKING_THREADS",
            "worker_threads": "GREY_WORKER_THREADS",
        }
        for name, var in {
            "shutdown_grace_seconds": "GREY_SHUTDOWN_GRACE_SECONDS",
            "credential_cache_seconds": "GREY_CREDENTIAL_CACHE_SECONDS",
        }.items():
            if var in env:
                values[name] = float(env[var])
        for name, var in strings.items():
            if var in env:
                values[name] = env[var]
        for name, var in numbers.items():
            if var in env:
                values[name] = int(env[var])
        if env.get("GREY_APIS", "").strip():
            values["apis"] = tuple(name.strip() for name in env["GREY_APIS"].split(",") if name.strip())
        api_ports = {}
        for var, value in env.items():
            parts = var.split("_")
            if (
                len(parts) >= 4
                and parts[0] == "GREY"
                and parts[-1] == "PORT"
                and parts[-2] in ("REST", "GRPC")
            ):
                api_ports[f"{'_'.join(parts[1:-2]).lower()}_{parts[-2].lower()}"] = int(value)
        base_paths = {
            var[len("GREY_") : -len("_BASE_PATH")].lower(): value.strip().rstrip("/")
            for var, value in env.items()
            if var.startswith("GREY_") and var.endswith("_BASE_PATH") and len(var) > len("GREY__BASE_PATH")
        }
        if base_paths:
            values["api_base_paths"] = base_paths
        anonymous = {
            var[len("GREY_") : -len("_ANONYMOUS_TENANT")].lower(): value.strip()
            for var, value in env.items()
            if var.startswith("GREY_")
            and var.endswith("_ANONYMOUS_TENANT")
            and len(var) > len("GREY__ANONYMOUS_TENANT")
            and value.strip()
        }
        for api, tenant in anonymous.items():
            if not _TENANT.match(tenant):
                raise ValueError(
                    f"GREY_{api.upper()}_ANONYMOUS_TENANT: tenant ids are 1-64 letters, digits or '-'"
                )
        if anonymous:
            values["anonymous_tenants"] = anonymous
        if "GREY_API_CALL_ALLOWED_HOSTS" in env:
            hosts = env["GREY_API_CALL_ALLOWED_HOSTS"].split(",")
            values["api_call_allowed_hosts"] = tuple(h.strip().lower() for h in hosts if h.strip())
        if api_ports:
            values["api_ports"] = api_ports
        if "GREY_CLUSTER_CONFIG" in env:
            values["cluster_config"] = Path(env["GREY_CLUSTER_CONFIG"])
        for name, var in {
            "tls_cert_file": "GREY_TLS_CERT_FILE",
            "tls_key_file": "GREY_TLS_KEY_FILE",
            "tls_client_ca_file": "GREY_TLS_CLIENT_CA_FILE",
        }.items():
            if env.get(var, "").strip():
                values[name] = Path(env[var].strip())
        if env.get("GREY_TLS_CLIENT_CERT", "").strip():
            values["tls_client_cert"] = env["GREY_TLS_CLIENT_CERT"].strip().lower()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
