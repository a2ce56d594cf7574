"""``provenance audit``: clusters of copies inside a folder, copies of indexed items, and originals."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ..checker import Index, default_index_path
from .common import EXIT_BAD_INPUT, EXIT_OK, follow_links_option, handle_errors, index_option, quiet_option, warn


def default_state_path(index_path: Path) -> Path:
    """``<index>.audit.sqlite`` next to the index folder (not inside it: the index may not exist)."""
    return index_path.parent / (index_path.name + ".audit.sqlite")


class _Progress:
    """``audited N/M  R files/s`` on stderr, redrawn in place; only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.first: int | None = None

    def __call__(self, done: int, total: int, counters: dict) -> None:
        if not self.enabled:
            return
        if self.first is None:
            self.first, self.t0 = done, time.perf_counter()
        rate = (done - self.first) / max(1e-6, time.perf_counter() - self.t0)
        width = 30
        filled = int(width * done / max(1, total))
        sys.stderr.write(f"\raudit [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                         f"{rate:6.1f} files/s  reused {counters['reused'] + counters['reused_by_sha256']}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files or folders matching GLOB.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full result (provenance.audit/1) to FILE ('-' for stdout).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one row per item to FILE.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML report to FILE.")
@click.option("--add", is_flag=True, help="Also add the audited items to the index (created if missing).")
@click.option("--source", "source_label", default=None, help="Label for items added with --add.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fingerprint cache and resume state (default: <index>.audit.sqlite).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes for decoding and hashing.")
@follow_links_option
@index_option
@quiet_option
@handle_errors
def audit(paths: tuple[Path, ...], exclude: tuple[str, ...], json_path: Path | None, csv_path: Path | None,
          html_path: Path | None, add: bool, source_label: str | None, state_path: Path | None, workers: int,
          follow_links: bool, index_path: Path | None, quiet: bool) -> None:
    """Audit folders: clusters of near-duplicates, copies of indexed items, originals.

    Walks PATHS recursively, fingerprints every file in parallel (cached: a rerun only reads changed
    files, an interrupted run resumes), groups copies inside the archive, and checks each item against
    the index when there is one. Unreadable files are reported and skipped (exit code 3 if any).

    \b
    Example:
      provenance audit --index ./idx ./archive --html report.html --json report.json --csv items.csv
    """
    from ..audit import audit as run_audit
    from ..audit_export import write_csv
    from ..audit_html import write_html, write_private_text

    index_path = index_path or default_index_path()
    state_path = state_path or default_state_path(index_path)
    index = None
    if (index_path / "catalog.sqlite").exists() or add:
        index = Index.open(index_path, create=add)
    else:
        warn(f"no index at {index_path}: auditing inside the archive only (use --add to create it)", quiet)
    # Issue 11 (hardening): the state database and the reports quote audited files: owner-only files.
    from ..files import create_private_file
    state_path.parent.mkdir(parents=True, exist_ok=True)
    create_private_file(state_path)
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())
    try:
        try:
            result = run_audit(list(paths), state_path=state_path, index=index, add=add, source=source_label,
                               exclude=exclude, workers=workers, progress=progress, follow_links=follow_links)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: finished batches are saved in {state_path}; run again to resume",
                       err=True)
            raise
    finally:
        if index is not None:
            index.close()
    for w in result.walk_errors:
        warn(f"skipped {w['path']}: {w['error']}")
    for it in result.items:
        if not it.ok:
            warn(f"skipped {it.path}: {it.record['error']}")
    doc = result.to_dict()
    if json_path is not None:
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        if str(json_path) == "-":
            click.echo(text)
        else:
            write_private_text(json_path, text)  # issue 11: 0600
    if csv_path is not None:
        create_private_file(csv_path)  # issue 11: 0600 when new
        write_csv(result, csv_path)
    if html_path is not None:
        write_html(result, html_path)
    s = doc["summary"]
    if str(json_path) != "-":
        click.echo(f"{s['files']} files ({s['images']} images, {s['texts']} texts), {s['errors']} skipped; "
                   f"{s['clusters']} clusters covering {s['clustered_items']} items; "
                   f"{s['matched_in_index']} copy indexed items; {s['original']} original; "
                   f"fingerprinted {s['fingerprinted']}, reused {s['reused'] + s['reused_by_sha256']} "
                   f"in {s['seconds']:.1f}s")
    sys.exit(EXIT_BAD_INPUT if s["errors"] else EXIT_OK)
