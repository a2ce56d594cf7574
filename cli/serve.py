"""``provenance serve``: run the HTTP service (issue 13). FastAPI is imported only when it runs."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from ..checker import default_index_path
from .common import handle_errors, index_option, warn

DEFAULT_HOST = "127.0.0.1"  # the same as provenance.service.DEFAULT_HOST, which needs FastAPI to import
DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@index_option
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on. Anything but loopback is reachable by others: put a TLS reverse "
                   "proxy in front (see the README).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: any free port).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File holding the bearer token (default: <index>/serve.token). "
                   "$PROVENANCE_SERVE_TOKEN, when set, is used instead.")
@click.option("--new-token", is_flag=True,
              help="Write a new random token to the token file (mode 0600), print it, and exit.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=32.0, show_default=True,
              help="Largest request body accepted, in MiB (larger ones get 413).")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=64, show_default=True,
              help="Connections and requests at once; more get 503 (bounds the memory queued uploads hold).")
@click.option("--root-path", default="", metavar="PREFIX",
              help="URL prefix a reverse proxy serves the service under (e.g. /provenance).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="info", show_default=True, help="uvicorn's log level (access log at info).")
@handle_errors
def serve(index_path: Path | None, host: str, port: int, token_file: Path | None, new_token: bool,
          max_upload_mb: float, max_concurrent: int, root_path: str, log_level: str) -> None:
    """Serve the index over HTTP: /v1/check, the C2PA Soft Binding Resolution API, /v1/info, /docs.

    Every route but /healthz needs "Authorization: Bearer <token>". Items that `provenance add` adds
    in another process become matchable within seconds; removed ones stop matching.

    \b
    Example:
      provenance serve --index ./idx --new-token       # once: writes ./idx/serve.token (0600)
      provenance serve --index ./idx --port 8765
      curl -H "Authorization: Bearer $(cat ./idx/serve.token)" http://127.0.0.1:8765/v1/info
    """
    index_path = index_path or default_index_path()
    if new_token:
        from ..service import TOKEN_ENV, TOKEN_FILE, write_new_token

        where = token_file or index_path / TOKEN_FILE
        click.echo(write_new_token(where))
        warn(f"wrote a new token to {where} (mode 0600); the old one no longer works once the service "
             "restarts" + (f"; ${TOKEN_ENV} is set and takes precedence over the file" if os.environ.get(TOKEN_ENV)
                           else ""))
        return
    import uvicorn

    from ..service import create_app, load_token

    token = load_token(index_path, token_file)
    if not _is_loopback(host):
        warn(f"listening on {host}: anyone who can reach this port can try tokens; serve it over TLS "
             "behind a reverse proxy")
    app = create_app(index_path, token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    # One process: the index, its FAISS indexes and the text model live in it (and a second worker
    # would only duplicate them). server_header off: no version banner for strangers.
    uvicorn.run(app, host=host, port=port, log_level=log_level, root_path=root_path, server_header=False,
                limit_concurrency=max_concurrent)
