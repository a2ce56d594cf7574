"""``provenance doctor``: the installation and the index, checked (see :mod:`provenance.doctor`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..checker import default_index_path
from ..doctor import diagnose
from .common import echo_json, handle_errors, index_option
from .exit_codes import EXIT_INDEX, EXIT_MISSING, EXIT_OK

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "absent": "--"}
_TITLES = {"runtime": "runtime", "signal": "signals (load + first fingerprint of a probe)",
           "engine": "optional packages", "reader": "external readers", "index": "index"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--no-models", is_flag=True, help="List the signals without loading their models (fast).")
@index_option
@handle_errors
def doctor(as_json: bool, no_models: bool, index_path: Path | None) -> None:
    """Check what this installation can do and whether the index is healthy.

    Loads each signal's model and times it on a probe, lists optional packages and external readers
    (exiftool, Chromium), and checks the index: catalog integrity, signals waiting for a back-fill,
    FAISS snapshots, free disk space. Read-only. Exit codes: 0 healthy (warnings allowed), 4 the index
    has a problem, 5 a signal cannot work (a missing component).

    \b
    Example:
      provenance doctor --index ./idx
    """
    where = index_path or default_index_path()
    d = diagnose(where, load_models=not no_models)
    if as_json:
        echo_json(d.to_dict())
    else:
        area = None
        for f in d.findings:
            if f.area != area:
                area = f.area
                click.echo(f"{_TITLES[area]}:")
            click.echo(f"  [{_MARK[f.status]:>4}] {f.name}: {f.detail}")
        problems = d.failed()
        click.echo(f"{len(problems)} problem(s)" if problems else "no problems found")
    if d.failed("index"):
        sys.exit(EXIT_INDEX)
    if d.failed():
        sys.exit(EXIT_MISSING)
    sys.exit(EXIT_OK)
