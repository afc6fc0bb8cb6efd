"""The `grey` command line: serve, keys, simulate, plan."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from runtime.settings import Settings

app = typer.Typer(help="Grey: spec-first platform for running distributed work.", no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")
console = Console()


@app.command()
def serve(
    rest_port: Annotated[int | None, typer.Option(help="REST port (default 8080)")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port (default 4100)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind both servers to")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
) -> None:
    """Serve REST and gRPC from one process (embedded default: SQLite, in-process workers)."""
    from runtime.app import serve as run

    run(
        Settings.from_env(
            rest_port=rest_port,
            grpc_port=grpc_port,
            rest_host=host,
            grpc_host=host,
            database_url=database_url,
        )
    )


@keys.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help="Tenant id (letters, digits, '-')")],
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes, e.g. tasks:read,tasks:write")],
    description: Annotated[str, typer.Option(help="Note stored with the key")] = "",
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
) -> None:
    """Mint an API key; only its hash is stored, so it is shown once."""
    from runtime.auth import Authenticator, parse_scopes
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


def _register_simulator_commands() -> None:
    # The simulator owns its commands; the CLI only mounts them.
    from simulator.cli import plan, simulate

    app.command("simulate")(simulate)
    app.command("plan")(plan)


_register_simulator_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
