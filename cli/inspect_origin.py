"""``provenance inspect``: what files already say about their origin, and a suggested source type."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import ProvenanceError
from ..iptc import short_source_type
from ..origin import OriginReport, inspect_origin
from .common import EXIT_BAD_INPUT, EXIT_OK, echo_json, handle_errors

#: ``provenance inspect`` exit code when a file names a generator (or a manifest says AI) and
#: ``--fail-on-ai`` is given.
EXIT_AI = 1


@click.command("inspect")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="CA.pem", help="Trust anchor (PEM CA certificate) for C2PA signers; "
                                     "repeatable.")
@click.option("--no-watermarks", is_flag=True,
              help="Skip invisible-watermark decoding (the slowest step).")
@click.option("--fail-on-ai", is_flag=True,
              help="Exit 1 when any file's suggestion is trainedAlgorithmicMedia or "
                   "compositeWithTrainedAlgorithmicMedia (a gate for 'is this AI-made?').")
@click.option("--json", "as_json", is_flag=True, help="One JSON document for all files.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="One JSON record per file.")
@handle_errors
def inspect_command(files: tuple[Path, ...], trust: tuple[Path, ...], no_watermarks: bool,
                    fail_on_ai: bool, as_json: bool, as_jsonl: bool) -> None:
    """Show everything FILES already say about where they came from, each item with where
    it was found, and end with a suggested IPTC digitalSourceType and its evidence (or
    "unknown"):

    \b
      - a C2PA manifest: validation state (with --trust anchors), claim generator, actions
        with their digitalSourceType, ingredients and the chain of earlier manifests;
      - XMP Iptc4xmpExt:DigitalSourceType, EXIF Software/Make/Model;
      - generator settings in text metadata (Stable Diffusion web UI "parameters",
        ComfyUI "prompt"/"workflow", InvokeAI, NovelAI, Midjourney);
      - invisible watermarks of open generators (invisible-watermark dwtDct: SD 1, SD 2,
        SDXL, Stability video models), decoded without model weights.

    Absence of signals is not evidence of a camera capture: a file that says nothing gets
    "unknown". Damage inside a file (malformed manifest, truncated XMP, huge or binary text
    chunks) is listed under problems; a file that cannot be read at all is reported on
    stderr and the batch goes on.

    Exit codes: 0 all files inspected, 1 --fail-on-ai and a file looks AI-made, 3 a file
    could not be read (the others are still reported).

    \b
    Example:
      provenance inspect photo.jpg render.png
      provenance inspect --json --trust ./signer/ca.pem downloads/*.png
    """
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl are exclusive")
    reports: list[OriginReport] = []
    errors: list[dict[str, str]] = []
    for path in files:
        try:
            report = inspect_origin(path, trust_anchors=list(trust) or None,
                                    watermarks=not no_watermarks)
        except ProvenanceError as exc:
            # A bad file is reported and skipped; the batch goes on.
            click.echo(f"error: {exc}", err=True)
            errors.append({"path": str(path), "error": str(exc)})
            continue
        reports.append(report)
        if as_jsonl:
            click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        elif not as_json:
            click.echo(_render(report))
    if as_json:
        echo_json({"schema": "provenance.inspect/1",
                   "reports": [r.to_dict() for r in reports], "errors": errors})
    if fail_on_ai and any(r.suggestion in ("trainedAlgorithmicMedia",
                                           "compositeWithTrainedAlgorithmicMedia")
                          for r in reports):
        sys.exit(EXIT_AI)
    sys.exit(EXIT_BAD_INPUT if errors else EXIT_OK)


def _render(report: OriginReport) -> str:
    head = f"{report.path} ({report.media_type}): suggested source type {report.suggestion}"
    lines = [head]
    for item in report.evidence:
        lines.append(f"  evidence  {item}")
    for conflict in report.conflicts:
        lines.append(f"  CONFLICT  {conflict.message}")
    if report.signals:
        lines.append("  found:")
    for s in report.signals:
        implied = f" -> {short_source_type(s.source_type)}" if s.source_type else ""
        lines.append(f"    [{s.strength}] {s.signal}: {s.summary}{implied}")
        lines.append(f"           in {s.found_in}")
    c2pa = report.c2pa or {}
    chain = c2pa.get("chain") or []
    if len(chain) > 1:
        lines.append("  C2PA history (newest first):")
        for link in chain:
            types = ", ".join(short_source_type(t) for t in link["source_types"]) or "-"
            lines.append(f"    {'  ' * link['depth']}{link['relationship'] or 'active'}: "
                         f"{link['status']}; {types}; {', '.join(link['actions']) or '-'}")
    for binding in c2pa.get("soft_bindings") or []:
        lines.append(f"  soft binding {binding['alg']}: {', '.join(binding['values'])}")
    if not report.signals:
        lines.append("  nothing in the file says where it came from (that is not evidence of "
                     "a camera capture)")
    for problem in report.problems:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)
