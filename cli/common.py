"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..checker import INDEX_ENV, Index, default_index_path
from ..errors import ProvenanceError
from .exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_INDEX,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_MANIFEST,
    EXIT_MATCH,
    EXIT_MISSING,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_INDEX", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_MANIFEST", "EXIT_MATCH",
           "EXIT_MISSING", "EXIT_OK", "EXIT_USAGE", "echo_json", "follow_links_option", "handle_errors",
           "index_option", "open_index", "progress_option", "quiet_option", "StatusLine", "warn"]
#: Set to get the full traceback of an internal error.
DEBUG_ENV = "PROVENANCE_DEBUG"

index_option = click.option(
    "--index", "index_path", type=click.Path(file_okay=False, path_type=Path), envvar=INDEX_ENV,
    default=None, show_envvar=True,
    help="Index directory (default: $PROVENANCE_INDEX, else ./.provenance).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress or warnings on stderr.")
progress_option = click.option(
    "--progress/--no-progress", "progress", default=None,
    help="Show what is being worked on, on stderr (default: when stderr is a terminal and not --quiet).")
#: Issue 11: walks stay inside the folders given unless asked.
follow_links_option = click.option(
    "--follow-links", is_flag=True,
    help="Follow symbolic links met inside walked folders (by default they are skipped and reported: they "
         "may lead outside the folder).")


def open_index(index_path: Path | None, *, create: bool = False) -> Index:
    """Open the index named on the command line (or the default one)."""
    return Index.open(index_path or default_index_path(), create=create)


def warn(message: str, quiet: bool = False) -> None:
    """A warning on stderr (always for errors about inputs; ``quiet`` silences the rest)."""
    if not quiet:
        click.echo(message, err=True)


def echo_json(doc: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2))


def handle_errors(fn: Callable) -> Callable:
    """Turn library exceptions into a message on stderr and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ProvenanceError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exit_code_for(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - issue 11: no traceback, never exit 1 (= "match")
            import os
            if os.environ.get(DEBUG_ENV):
                raise
            what = "out of memory" if isinstance(exc, MemoryError) else f"{type(exc).__name__}: {exc}"
            click.echo(f"internal error: {what} (a bug; rerun with {DEBUG_ENV}=1 for the traceback and "
                       "report it)", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


class StatusLine:
    """Progress on stderr: redrawn in place on a terminal, one line per message otherwise (when asked for
    with ``--progress``, e.g. in a CI log). Messages carry the elapsed time, so a slow stage shows itself."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live = sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.width = 0

    @classmethod
    def from_options(cls, progress: bool | None, quiet: bool) -> StatusLine:
        """On when ``--progress``; off when ``--no-progress`` or ``--quiet``; else when stderr is a terminal."""
        return cls(progress if progress is not None else (not quiet and sys.stderr.isatty()))

    def show(self, message: str) -> None:
        """Replace the current status with ``message``."""
        if not self.enabled:
            return
        text = f"{message} ({time.perf_counter() - self.t0:.1f} s)"
        if self.live:
            cols = shutil.get_terminal_size((100, 20)).columns - 1
            if len(text) > cols:  # keep the end: the stage and the time matter more than a long path
                text = "…" + text[len(text) - cols + 1:]
            sys.stderr.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def prefixed(self, prefix: str) -> Callable[[str], None]:
        """A progress callback that shows ``prefix: stage`` (e.g. the file being checked)."""
        def show(stage: str) -> None:
            self.show(f"{prefix}: {stage}")
        return show

    def clear(self) -> None:
        """Remove the status line before results are printed."""
        if self.enabled and self.live and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
            self.width = 0
