"""``provenance lookup``: find the recorded disclosure of content a file copies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..disclosure import LookupResult
from ..disclosure import lookup as lookup_disclosures
from ..iptc import short_source_type
from .common import echo_json, handle_errors, index_option, open_index
from .exit_codes import EXIT_NOT_FOUND, EXIT_OK


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--min-verdict", type=click.Choice(["exact", "near-duplicate", "partial", "paraphrase"]),
              default="near-duplicate", show_default=True,
              help="Weakest match that counts (paraphrase: embedding similarity of text).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def lookup(file: Path, min_verdict: str, as_json: bool, index_path: Path | None) -> None:
    """Find the disclosure manifest of content that FILE copies, even when FILE's own
    metadata was stripped or it was re-encoded, resized or lightly edited (images by PDQ and
    pHash, text by shingles, both by the ISCC content code signed into the manifest's
    c2pa.soft-binding assertion), and say how close the copy is.

    Exit codes: 0 a recorded disclosure matched, 10 none matched, 3 bad input, 4 index problem.

    \b
    Example:
      provenance lookup --index ./idx screenshot-of-post.jpg
    """
    idx = open_index(index_path)
    try:
        result = lookup_disclosures(idx, file, min_verdict=min_verdict)
    finally:
        idx.close()
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(_render_lookup(result))
    sys.exit(EXIT_OK if result.found else EXIT_NOT_FOUND)


def _render_lookup(result: LookupResult) -> str:
    lines = [f"{result.path}: " + (f"{len(result.hits)} disclosed item(s) match"
                                   if result.found else "no recorded disclosure matches")
             + f" (own manifest: {result.own_status})"]
    for hit in result.hits:
        how = _closeness_text(hit.closeness)
        lines.append(f"  item {hit.item_id}: {hit.verdict} via {hit.signal} ({how})")
        for d, status in zip(hit.disclosures, hit.manifest_status):
            gen = f", generator {d.generator}" if d.generator else ""
            where = d.manifest_path or d.output_path
            lines.append(f"    {short_source_type(d.source_type)}{gen}; signer {d.signer}")
            lines.append(f"      manifest {d.manifest_label} in {where} (now: {status})")
    return "\n".join(lines)


def _closeness_text(closeness: dict[str, Any]) -> str:
    # Every signal's closeness carries its own one-line summary: nothing here knows a signal's name.
    return "; ".join(f"{name} {c['summary']}" for name, c in closeness.items()) or "no evidence"
