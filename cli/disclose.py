"""``provenance keys new``, ``disclose``, ``verify``, ``lookup``: AI-disclosure manifests.

A thin layer over ``provenance.manifest`` (sign/verify one file) and ``provenance.disclosure``
(originality check, index record, lookup by fingerprint).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..disclosure import (
    DisclosureOutcome,
    LookupResult,
    OriginalityRefusedError,
    disclose_content,
    import_signing_identity,
)
from ..disclosure import (
    lookup as lookup_disclosures,
)
from ..errors import BadInputError
from ..manifest import (
    IPTC_DIGITAL_SOURCE_TYPE_BASE,
    VerifyResult,
    load_signing_identity,
    new_signing_identity,
    parse_source_type,
)
from ..manifest import (
    verify as verify_file,
)
from .common import EXIT_MATCH, EXIT_OK, echo_json, handle_errors, index_option, open_index

#: ``provenance verify`` exit codes, one per status (documented in its help).
VERIFY_EXIT_CODES: dict[str, int] = {
    "trusted": 0,
    "valid": 0,
    "no-manifest": 10,
    "untrusted": 11,
    "tampered": 12,
    "invalid-signature": 13,
    "malformed": 14,
    "unreachable": 15,
}
#: ``provenance lookup`` exit code when no recorded disclosure matches.
EXIT_NOT_FOUND = 10

SIGNER_ENV = "PROVENANCE_SIGNER"

_STATUS_TEXT = {
    "trusted": "TRUSTED: content intact, signature valid, signer chains to a given trust anchor",
    "valid": "VALID: content intact and signature valid; the signer is not checked against a "
             "trust anchor (pass --trust CA.pem to check who signed)",
    "untrusted": "UNTRUSTED SIGNER: content intact and signature valid, but the signer does not "
                 "chain to any given trust anchor",
    "tampered": "TAMPERED: the content or the manifest changed after signing; the disclosure "
                "cannot be relied on",
    "invalid-signature": "INVALID SIGNATURE: the claim signature or signing certificate is bad; "
                         "the disclosure cannot be relied on",
    "malformed": "MALFORMED: a manifest is present but cannot be read or validated; the "
                 "disclosure cannot be relied on",
    "unreachable": "UNREACHABLE: the manifest is stored remotely and is never fetched (offline)",
    "no-manifest": "NO MANIFEST: no C2PA manifest in the file and no sidecar",
}


def _short_type(uri: str) -> str:
    return uri.removeprefix(IPTC_DIGITAL_SOURCE_TYPE_BASE)


def _source_type_callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # A usage error (exit 2) with the whole vocabulary, before any file or key is touched.
    try:
        return parse_source_type(value)
    except BadInputError as exc:
        raise click.BadParameter(str(exc)) from None


# ---------------------------------------------------------------------------------------
# keys


@click.group()
def keys() -> None:
    """Signing identities for disclosure manifests.

    \b
    Example:
      provenance keys new ~/.config/provenance/signer
    """


@keys.command("new")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--algorithm", type=click.Choice(["es256", "es384", "ed25519"]), default="es256",
              show_default=True, help="Key type of the new CA and signing certificate.")
@click.option("--name", "common_name", default="provenance-checker signer", show_default=True,
              help="The signer's name (certificate CN), shown by verifiers.")
@click.option("--organization", default="provenance-checker", show_default=True,
              help="Organisation (certificate O).")
@click.option("--cert", "certificate", type=click.Path(dir_okay=False, path_type=Path),
              help="Import this PEM certificate chain (leaf first) instead of making one.")
@click.option("--key", "key", type=click.Path(dir_okay=False, path_type=Path),
              help="The private key (PEM, unencrypted) of --cert.")
@click.option("--overwrite", is_flag=True, help="Replace an identity already in DIRECTORY.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@handle_errors
def keys_new(directory: Path, algorithm: str, common_name: str, organization: str,
             certificate: Path | None, key: Path | None, overwrite: bool, as_json: bool) -> None:
    """Make a signing identity in DIRECTORY: a private CA (ca.pem), a signing certificate
    chain (signer-chain.pem) and its key (signer.key, mode 0600).

    With --cert and --key, an existing chain and key are checked and copied there instead
    (the chain's self-signed root, if it ends in one, becomes ca.pem).

    A self-made CA is trusted by nobody else: verifiers report your manifests as valid but
    with an unestablished (or untrusted) signer until they add ca.pem as a trust anchor.

    \b
    Example:
      provenance keys new ./signer --name "Jane Doe, Example News"
      provenance keys new ./signer --cert chain.pem --key key.pem
    """
    if (certificate is None) != (key is None):
        raise click.UsageError("--cert and --key go together")
    if certificate is not None and key is not None:
        identity = import_signing_identity(directory, certificate=certificate, key=key,
                                           overwrite=overwrite)
        imported = True
    else:
        identity = new_signing_identity(directory, algorithm=algorithm, common_name=common_name,
                                        organization=organization, overwrite=overwrite)
        imported = False
    if as_json:
        echo_json({"directory": str(directory), "imported": imported,
                   "algorithm": identity.algorithm, "subject": identity.subject,
                   "issuer": identity.issuer, "chain": str(identity.chain_path),
                   "key": str(identity.key_path),
                   "ca": str(identity.ca_path) if identity.ca_path else None})
        return
    click.echo(f"{'imported' if imported else 'created'} signing identity in {directory}")
    click.echo(f"  signer:  {identity.subject} ({identity.algorithm})")
    click.echo(f"  issuer:  {identity.issuer}")
    click.echo(f"  chain:   {identity.chain_path}")
    click.echo(f"  key:     {identity.key_path} (mode 0600; keep it private, back it up)")
    if identity.ca_path:
        click.echo(f"  CA root: {identity.ca_path}")
    if not imported:
        click.echo(
            "note: this CA is self-made, so it is UNTRUSTED everywhere else: other verifiers "
            "will not vouch for who signed until they trust its root, e.g. "
            f"`provenance verify --trust {identity.ca_path} FILE`.")


# ---------------------------------------------------------------------------------------
# disclose


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
@click.option("--fail-on", type=click.Choice(["exact", "near-duplicate", "paraphrase"]),
              default="near-duplicate", show_default=True,
              help="With --check: refuse to disclose at this verdict or stronger.")
@click.option("--force", is_flag=True,
              help="With --check: disclose even when flagged (the verdict is still recorded).")
@click.option("--no-record", is_flag=True,
              help="Do not record the disclosure in the index (then `lookup` cannot find copies).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def disclose(file: Path, source_type: str, generator: str | None, signer_dir: Path,
             output: Path | None, in_place: bool, run_check: bool, fail_on: str, force: bool,
             no_record: bool, as_json: bool, index_path: Path | None) -> None:
    """Sign an AI-generation disclosure (C2PA c2pa.actions with an IPTC digital source type)
    into FILE.

    JPEG, PNG, WebP (and other formats C2PA embeds into) get an embedded manifest and the
    IPTC XMP DigitalSourceType, in a new file or --in-place. Text, Markdown and other formats
    get a sidecar FILE.c2pa bound to the content's hash. Unless --no-record, the disclosure is
    recorded in the index so `provenance lookup` finds it for stripped or re-encoded copies.

    Exit codes: 0 disclosed, 1 refused by --check (flagged, no --force), 2 usage (e.g.
    unknown source type), 3 bad input, 4 index problem, 5 missing component, 6 signing failed.

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
                in_place=in_place, record=not no_record)
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
    if as_json:
        echo_json(dict(outcome.to_dict(), disclosed=True))
    else:
        _render_disclosure(outcome, idx.path if idx is not None and not no_record else None)
    sys.exit(EXIT_OK)


def _render_disclosure(outcome: DisclosureOutcome, index_dir: Path | None) -> None:
    r = outcome.result
    gen = f" (generator {r.generator})" if r.generator else ""
    click.echo(f"disclosed {r.source} as {_short_type(r.source_type)}{gen}")
    if r.embedded:
        xmp = "; IPTC XMP DigitalSourceType written" if r.xmp_written else ""
        click.echo(f"  signed file: {r.path} (embedded C2PA manifest {r.manifest_label}{xmp})")
    else:
        click.echo(f"  sidecar manifest: {r.manifest_path} (bound to the hash of {r.path}; "
                   "any edit of the content shows as tampered)")
    click.echo(f"  signer: {r.signer}")
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


# ---------------------------------------------------------------------------------------
# verify


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="CA.pem", help="Trust anchor (PEM CA certificate); repeatable.")
@click.option("--sidecar", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the manifest from this file instead of FILE.c2pa / the embedded one.")
@click.option("--require-trusted", is_flag=True,
              help="Exit 11 unless the signer chains to a --trust anchor (a gate for publishing).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@handle_errors
def verify(file: Path, trust: tuple[Path, ...], sidecar: Path | None, require_trusted: bool,
           as_json: bool) -> None:
    """Verify FILE's disclosure manifest (embedded, or the sidecar FILE.c2pa), offline.

    \b
    Exit codes, one per status:
       0  trusted   content intact, signature valid, signer chains to a --trust anchor
       0  valid     content intact, signature valid, no anchor given (signer unestablished;
                    11 with --require-trusted)
      10  no-manifest
      11  untrusted  intact and validly signed, but not by a --trust anchor
      12  tampered   content or manifest changed after signing
      13  invalid-signature
      14  malformed
      15  unreachable  the manifest is remote and is never fetched
       3  bad input (missing file, unreadable trust anchor)
    Only exit 0 means the disclosure is what its signer wrote.

    \b
    Example:
      provenance verify --trust ./signer/ca.pem photo.c2pa.png
      provenance verify --json draft.md
      provenance verify --require-trusted --trust ./signer/ca.pem post.md
    """
    result = verify_file(file, trust_anchors=list(trust) or None, sidecar=sidecar)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(_render_verify(result))
    code = VERIFY_EXIT_CODES[result.status]
    if require_trusted and result.status == "valid":
        code = VERIFY_EXIT_CODES["untrusted"]
    sys.exit(code)


def _render_verify(result: VerifyResult) -> str:
    lines = [f"{result.path}: {_STATUS_TEXT[result.status]}"]
    if result.sidecar:
        lines.append(f"  manifest: sidecar {result.sidecar}")
    if result.status == "no-manifest":
        return "\n".join(lines)
    # What a broken manifest says is shown as a claim, never as a fact.
    claim = "" if result.intact else " (claimed, NOT verified)"
    if result.source_types:
        lines.append(f"  source type{claim}: " + ", ".join(
            _short_type(t) for t in result.source_types))
    elif result.manifest_label:
        lines.append(f"  source type{claim}: none declared")
    if result.generator:
        lines.append(f"  generator{claim}: {result.generator}")
    if result.signer:
        s = result.signer
        lines.append(f"  signer{claim}: {s.get('common_name') or '?'} (issuer {s.get('issuer') or '?'}, "
                     f"{s.get('algorithm') or '?'})")
    originality = result.assertions.get("org.provenance-checker.originality")
    if isinstance(originality, dict):
        forced = ", FORCED" if originality.get("forced") else ""
        lines.append(f"  originality{claim}: {str(originality.get('verdict')).upper()} at "
                     f"{originality.get('checked_at')} against index "
                     f"{(originality.get('index') or {}).get('id')}{forced}")
    if result.manifest_label:
        lines.append(f"  manifest label: {result.manifest_label}")
    # For a valid manifest the only code is signingCredential.untrusted, which "valid"
    # already says in words; listing it there would read like a failure.
    if result.failure_codes and result.status not in ("valid", "trusted"):
        lines.append("  validation: " + ", ".join(result.failure_codes))
    if result.error:
        lines.append(f"  error: {result.error}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# lookup


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--min-verdict", type=click.Choice(["exact", "near-duplicate", "paraphrase"]),
              default="near-duplicate", show_default=True,
              help="Weakest match that counts (paraphrase: embedding similarity of text).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def lookup(file: Path, min_verdict: str, as_json: bool, index_path: Path | None) -> None:
    """Find the disclosure manifest of content that FILE copies, even when FILE's own
    metadata was stripped or it was re-encoded, resized or lightly edited (images by PDQ and
    pHash, text by shingles), and say how close the copy is.

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
            lines.append(f"    {_short_type(d.source_type)}{gen}; signer {d.signer}")
            lines.append(f"      manifest {d.manifest_label} in {where} (now: {status})")
    return "\n".join(lines)


def _closeness_text(closeness: dict[str, Any]) -> str:
    return "; ".join(f"{name} {c['summary']}" for name, c in closeness.items()) or "no evidence"
