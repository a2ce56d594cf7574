"""``provenance disclose``: sign an AI-generation disclosure (C2PA) into a file.

A thin layer over ``provenance.disclosure`` (originality check, signing, index record).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..disclosure import (
    DisclosureOutcome,
    InconsistentDisclosureError,
    OriginalityRefusedError,
    consistency_dict,
    disclose_content,
)
from ..errors import BadInputError
from ..identities import load_signing_identity
from ..iptc import parse_source_type, short_source_type
from .common import (
    EXIT_MATCH,
    EXIT_OK,
    echo_json,
    handle_errors,
    index_option,
    open_index,
)

SIGNER_ENV = "PROVENANCE_SIGNER"


def _source_type_callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # A usage error (exit 2) with the whole vocabulary, before any file or key is touched.
    try:
        return parse_source_type(value)
    except BadInputError as exc:
        raise click.BadParameter(str(exc)) from None



@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--source-type", "source_type", required=True, callback=_source_type_callback,
              metavar="TYPE",
              help="IPTC digital source type, e.g. trainedAlgorithmicMedia, "
                   "compositeWithTrainedAlgorithmicMedia, algorithmicallyEnhanced, "
                   "digitalCapture, humanEdits (or the full IPTC URI).")
@click.option("--generator", default=None, metavar="NAME",
              help="The model or tool that made the content (recorded as softwareAgent).")
@click.option("--signer", "signer_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar=SIGNER_ENV, show_envvar=True, required=True,
              help="Signing identity directory (from `provenance keys new`).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the signed copy (images) or the sidecar (other formats). "
                   "Default: NAME.c2pa.EXT beside an image, FILE.c2pa beside other files.")
@click.option("--in-place", is_flag=True,
              help="Replace the image itself (atomically). Other formats are never modified.")
@click.option("--check", "run_check", is_flag=True,
              help="Run the originality check first and sign its result into the manifest.")
@click.option("--fail-on", type=click.Choice(["exact", "near-duplicate", "partial", "paraphrase"]),
              default="near-duplicate", show_default=True,
              help="With --check: refuse to disclose at this verdict or stronger.")
@click.option("--force", is_flag=True,
              help="With --check: disclose even when flagged (the verdict is still recorded).")
@click.option("--no-record", is_flag=True,
              help="Do not record the disclosure in the index (then `lookup` cannot find copies).")
@click.option("--strict", is_flag=True,
              help="Refuse (exit 1) when --source-type contradicts what FILE already carries "
                   "(its C2PA manifest, XMP, generator settings, watermark); default: warn.")
@click.option("--trust", "trust", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="CA.pem", help="Trust anchor for reading FILE's existing manifest; "
                                     "repeatable.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def disclose(file: Path, source_type: str, generator: str | None, signer_dir: Path,
             output: Path | None, in_place: bool, run_check: bool, fail_on: str, force: bool,
             no_record: bool, strict: bool, trust: tuple[Path, ...], as_json: bool,
             index_path: Path | None) -> None:
    """Sign an AI-generation disclosure (C2PA c2pa.actions with an IPTC digital source type)
    into FILE.

    JPEG, PNG, WebP (and other formats C2PA embeds into) get an embedded manifest and the
    IPTC XMP DigitalSourceType, in a new file or --in-place. Text, Markdown and other formats
    get a sidecar FILE.c2pa bound to the content's hash. Unless --no-record, the disclosure is
    recorded in the index (source label 'disclosed') so `provenance lookup` finds it for stripped
    or re-encoded copies; `provenance check` of the same content then shows that match as your own
    disclosure and does not fail on it.

    Before signing, FILE is inspected (see `provenance inspect`): a --source-type that
    contradicts what it carries (say digitalCapture for an image whose own valid manifest,
    generator settings or watermark say trainedAlgorithmicMedia) is a warning, or with
    --strict a refusal. A manifest FILE already has is kept as the new one's parentOf
    ingredient (actions c2pa.opened, then c2pa.edited.metadata), so readers see the history.
    Every manifest carries a c2pa.soft-binding assertion (io.iscc.v0: the ISCC content code)
    so resolvers can find it for a stripped copy.

    Exit codes: 0 disclosed, 1 refused (--check flagged it without --force, or --strict and
    the declaration contradicts FILE), 2 usage (e.g. unknown source type), 3 bad input,
    4 index problem, 5 missing component, 6 signing failed.

    \b
    Example:
      provenance disclose --signer ./signer --source-type trainedAlgorithmicMedia \\
          --generator "ImageGen 3" --check photo.png
      provenance disclose --signer ./signer --source-type humanEdits draft.md
    """
    if output is not None and in_place:
        raise click.UsageError("--output and --in-place are exclusive")
    if force and not run_check:
        raise click.UsageError("--force only makes sense with --check")
    identity = load_signing_identity(signer_dir)
    idx = None
    if run_check or not no_record:
        # A check against an index that does not exist would call everything original.
        idx = open_index(index_path, create=not run_check)
    try:
        try:
            outcome = disclose_content(
                file, source_type=source_type, generator=generator, identity=identity,
                index=idx, check=run_check, force=force, fail_on=fail_on, output=output,
                in_place=in_place, record=not no_record, strict=strict,
                trust_anchors=list(trust) or None)
        except InconsistentDisclosureError as exc:
            if as_json:
                echo_json({"disclosed": False, "reason": str(exc),
                           "origin": exc.origin.to_dict(),
                           "consistency": consistency_dict(exc.conflicts)})
            click.echo(f"refused: {exc}", err=True)
            sys.exit(EXIT_MATCH)
        except OriginalityRefusedError as exc:
            if as_json:
                echo_json({"disclosed": False, "reason": str(exc),
                           "originality": exc.check.assertion,
                           "report": exc.check.report.to_dict()})
            click.echo(f"refused: {exc}", err=True)
            sys.exit(EXIT_MATCH)
    finally:
        if idx is not None:
            idx.close()
    for conflict in outcome.conflicts:
        # stderr, so it is seen even with --json on stdout; --strict turns it into a refusal.
        click.echo(f"warning: {file}: {conflict.message}", err=True)
    if as_json:
        echo_json(dict(outcome.to_dict(), disclosed=True))
    else:
        _render_disclosure(outcome, idx.path if idx is not None and not no_record else None)
    sys.exit(EXIT_OK)


def _render_disclosure(outcome: DisclosureOutcome, index_dir: Path | None) -> None:
    r = outcome.result
    gen = f" (generator {r.generator})" if r.generator else ""
    click.echo(f"disclosed {r.source} as {short_source_type(r.source_type)}{gen}")
    if r.embedded:
        xmp = "; IPTC XMP DigitalSourceType written" if r.xmp_written else ""
        click.echo(f"  signed file: {r.path} (embedded C2PA manifest {r.manifest_label}{xmp})")
    else:
        click.echo(f"  sidecar manifest: {r.manifest_path} (bound to the hash of {r.path}; "
                   "any edit of the content shows as tampered)")
    click.echo(f"  signer: {r.signer}")
    if r.parent_manifest:
        click.echo(f"  history: the existing manifest {r.parent_manifest} ({r.parent_status}) is "
                   "kept as the parentOf ingredient (c2pa.opened, c2pa.edited.metadata)")
    if r.parent_note:
        click.echo(f"  note: {r.parent_note}")
    if r.soft_binding:
        click.echo(f"  soft binding: io.iscc.v0 {r.soft_binding}")
    elif r.soft_binding_note:
        click.echo(f"  note: {r.soft_binding_note}")
    if outcome.origin is not None:
        found = outcome.origin.suggestion
        state = "is consistent with" if not outcome.conflicts else "CONTRADICTS"
        click.echo(f"  origin: the file itself suggests {found}; the declaration {state} it")
    if outcome.check:
        a = outcome.check.assertion
        forced = " — FORCED past the check" if a["forced"] else ""
        click.echo(f"  originality: {a['verdict'].upper()} (score {a['score']:.2f}) against index "
                   f"{a['index']['id']} ({a['index']['items']} items){forced}; signed into the "
                   "manifest")
        for m in a["matches"][:3]:
            how = f"distance {m['distance']:g}" if m["distance"] is not None else \
                f"score {m['score']:.2f}"
            click.echo(f"    item {m['id']} [{m['source'] or '-'}] {m['verdict']} via "
                       f"{m['signal']} ({how})")
    if outcome.record is not None:
        click.echo(f"  recorded in index {index_dir} as item {outcome.record.item_id} "
                   "(`provenance lookup` finds stripped or re-encoded copies)")
        if outcome.fingerprint_skipped:
            why = "; ".join(f"{k}: {v}" for k, v in outcome.fingerprint_skipped.items())
            click.echo(f"  note: some fingerprints were skipped ({why}); lookup may miss copies")
    elif outcome.record_note:
        click.echo(f"  note: {outcome.record_note}")
