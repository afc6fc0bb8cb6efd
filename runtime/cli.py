"""The `grey` command line: serve, worker, keys, certs, verify-proof, simulate, plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from runtime.settings import Settings

app = typer.Typer(help="Grey: spec-first platform for running distributed work.", no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")
certs = typer.Typer(help="TLS certificates.", no_args_is_help=True)
app.add_typer(certs, name="certs")
console = Console()


@app.command()
def serve(
    rest_port: Annotated[int | None, typer.Option(help="REST port (default 8080)")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port (default 4100)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind both servers to")] = None,
    apis: Annotated[
        str | None, typer.Option(help="APIs to serve, comma-separated (default: GREY_APIS, else all)")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
    broker_url: Annotated[
        str | None, typer.Option(help="embedded (default), redis://... or amqp://...")
    ] = None,
    worker_threads: Annotated[
        int | None,
        typer.Option(help="In-process cpu pool threads (default: the config's if embedded, else 0)"),
    ] = None,
) -> None:
    """Serve every enabled API over REST and gRPC from one process, each on its own listeners
    (embedded default: SQLite, in-process workers)."""
    from runtime.gateway.app import serve as run

    run(
        Settings.from_env(
            rest_port=rest_port,
            grpc_port=grpc_port,
            rest_host=host,
            grpc_host=host,
            database_url=database_url,
            broker_url=broker_url,
            worker_threads=worker_threads,
            apis=tuple(name.strip() for name in apis.split(",") if name.strip()) if apis else None,
        )
    )


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="cpu, gpu or tee (simulation mode)")] = "cpu",
    processes: Annotated[
        int | None,
        typer.Option("--processes", "-p", help="Worker processes (default: CPU count; gpu: one per GPU)"),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", "-t", help="Worker threads per process (default: the config's)")
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option("--queues", "-Q", help="Priorities to consume, e.g. critical,high (default: all)"),
    ] = None,
    emulate_gpus: Annotated[
        int | None, typer.Option(help="No GPU here: run N emulated GPU processes on the CPU")
    ] = None,
    broker_url: Annotated[str | None, typer.Option(help="redis://... or amqp://... (the gateway's)")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
    node_id: Annotated[
        str | None,
        typer.Option(help="Run one process as the placement node NODE_ID (gswarm: disk, dram, gpuN)"),
    ] = None,
) -> None:
    """Run a worker pool: processes of Dramatiq worker threads, each one a node of the cluster."""
    import os

    from runtime.execution.processes import WorkerStartError, placement_plan, supervise
    from runtime.execution.processes import plan as make_plan

    settings = Settings.from_env(broker_url=broker_url, database_url=database_url)
    try:
        chosen = make_plan(settings, pool, processes, threads, queues, emulate_gpus)
        if node_id is not None:
            chosen = placement_plan(chosen, node_id, processes)
    except WorkerStartError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    # Children read the same settings from the environment.
    os.environ["GREY_BROKER_URL"] = settings.broker_url
    os.environ["GREY_DATABASE_URL"] = settings.database_url
    devices = ", ".join(f"{d.name}#{d.index}" for d in chosen.devices) or "-"
    console.print(
        f"grey worker: pool {chosen.pool}, {chosen.processes} processes x {chosen.threads} threads, "
        f"queues {','.join(chosen.priorities)}, GPUs {devices}"
    )
    # SIGTERM: no new work, running tasks get GREY_SHUTDOWN_GRACE_SECONDS, then go back to pending.
    supervise(chosen, grace_seconds=settings.shutdown_grace_seconds)


@keys.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help="Tenant id (letters, digits, '-')")],
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes, e.g. tasks:read,tasks:write")],
    description: Annotated[str, typer.Option(help="Note stored with the key")] = "",
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
) -> None:
    """Mint an API key; only its hash is stored, so it is shown once."""
    from runtime.services.auth import Authenticator, parse_scopes
    from runtime.store import Store

    settings = Settings.from_env(database_url=database_url)
    try:
        chosen = parse_scopes(scopes)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scopes") from None
    with Store.open(settings.database_url) as store:
        auth = Authenticator(store, settings.token_ttl_seconds, settings.credential_cache_seconds)
        try:
            key = auth.create_key(tenant, chosen, description)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--tenant") from None
    console.print(key, highlight=False, soft_wrap=True)


@keys.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
) -> None:
    """List keys (ids, tenants, scopes, state); the keys themselves are never stored."""
    from rich.table import Table

    from runtime.store import Store

    settings = Settings.from_env(database_url=database_url)
    table = Table("key id", "tenant", "scopes", "created", "state", "description")
    with Store.open(settings.database_url) as store:
        for record in store.keys.list(tenant):
            table.add_row(
                record.key_id,
                record.tenant_id,
                ",".join(sorted(record.scopes)),
                record.created_at.isoformat(timespec="seconds"),
                "revoked" if record.revoked else "active",
                record.description or "",
            )
    console.print(table)


@keys.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key id `grey keys list` shows")],
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
) -> None:
    """Revoke a key: it, and every token minted from it, stop working within seconds."""
    from runtime.store import Store

    settings = Settings.from_env(database_url=database_url)
    with Store.open(settings.database_url) as store:
        if not store.keys.revoke(key_id):
            console.print(f"[red]no key {key_id}[/red]")
            raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@certs.command("dev")
def dev_certs(
    out: Annotated[
        Path | None, typer.Option(help="Directory for the PEM files (default: $GREY_HOME/certs, .grey/certs)")
    ] = None,
    hosts: Annotated[
        str, typer.Option(help="Names and addresses the server certificate is for, comma-separated")
    ] = "localhost,127.0.0.1,::1",  # runtime/certs.py:DEFAULT_HOSTS
    force: Annotated[bool, typer.Option("--force", help="Replace the files if they are there")] = False,
) -> None:
    """Make a local CA, a server certificate for HOSTS and a client certificate (mutual TLS on
    gRPC), and print the settings that turn TLS on. For trying TLS, not for production."""
    import os

    from runtime.certs import parse_hosts, write_dev_certs

    where = out if out is not None else Path(os.environ.get("GREY_HOME", ".grey")) / "certs"
    try:
        made = write_dev_certs(where.resolve(), parse_hosts(hosts), overwrite=force)
    except FileExistsError as error:
        console.print(f"[red]{error}: pass --force to replace them[/red]", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--hosts") from None
    lines = [
        f"Local CA and certificates in {made.ca.parent} (keys 0600). For trying TLS only.",
        "",
        "TLS on every listener (REST over HTTPS, gRPC over TLS):",
        f"  export GREY_TLS_CERT_FILE={made.server}",
        f"  export GREY_TLS_KEY_FILE={made.server_key}",
        "Mutual TLS on gRPC (clients present a certificate this CA signed):",
        f"  export GREY_TLS_CLIENT_CA_FILE={made.ca}",
        "",
        "Clients trust the CA:",
        f"  curl --cacert {made.ca} https://localhost:8080/health",
        f"  grpc.ssl_channel_credentials(root_certificates=open('{made.ca}', 'rb').read(),",
        f"      private_key=open('{made.client_key}', 'rb').read(),  # these two for mutual TLS",
        f"      certificate_chain=open('{made.client}', 'rb').read())",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True, markup=False)


@app.command("verify-proof")
def verify_proof(
    file: Annotated[Path, typer.Argument(help="A proof file (GET /v1/tasks/{id}/proof?format=binary)")],
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            help="PEM of a simulation root to trust (repeatable; default: GREY_TEE_TRUSTED_ROOTS, "
            "else $GREY_TEE_DIR/sim-root.pem)",
        ),
    ] = None,
) -> None:
    """Verify a task's TEE proof offline, with no server: the quote and its certificate chain
    up to a trusted simulation root, the node key it binds, the receipt that key signed, the
    result's digest and the code measurement. Exits 1 if any check fails."""
    from runtime.execution.tee.proof import Proof, ProofFormatError
    from runtime.execution.tee.roots import TrustedRoots
    from runtime.execution.tee.settings import TeeSettings
    from runtime.execution.tee.verify import ProofInvalid
    from runtime.execution.tee.verify import verify_proof as check

    files = tuple(root) if root else TeeSettings.from_env().root_files()
    try:
        facts = check(Proof.from_bytes(file.read_bytes()), TrustedRoots.from_files(files))
    except OSError as error:
        console.print(f"[red]cannot read {file}: {error.strerror}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except (ProofFormatError, ProofInvalid) as error:
        trusted = ", ".join(str(path) for path in files)
        console.print(f"[red]INVALID[/red] {error} (trusted roots: {trusted})", highlight=False)
        raise typer.Exit(1) from None
    predicate = facts.predicate
    console.print(
        f"VALID: task {predicate['task_id']} ran on {predicate['node']['node_id']}\n"
        f"  platform {facts.quote.platform}, debug {str(facts.quote.debug).lower()} "
        "(simulation mode: no hardware TEE)\n"
        f"  MRENCLAVE {facts.quote.mrenclave}\n  MRSIGNER  {facts.quote.mrsigner}\n"
        f"  result sha256 {facts.statement['subject'][0]['digest']['sha256']}\n"
        f"  root {facts.quote.root} (trusted: {', '.join(str(path) for path in files)})",
        highlight=False,
        soft_wrap=True,
    )


def _register_simulator_commands() -> None:
    # The simulator owns its commands; the CLI only mounts them.
    from simulator.cli import plan, simulate

    app.command("simulate")(simulate)
    app.command("plan")(plan)


_register_simulator_commands()


def _register_testbed_commands() -> None:
    # The test-bed (loadtest/bed) owns its commands; the CLI only mounts them.
    from loadtest.bed.cli import calibrate, loadtest, plan_verify

    app.command("loadtest")(loadtest)
    app.command("calibrate")(calibrate)
    app.command("plan-verify")(plan_verify)


_register_testbed_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
