"""``provenance verify``: verify a file's disclosure manifest offline, one exit code per status."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..c2pa_verify import VerifyResult
from ..c2pa_verify import verify as verify_file
from ..iptc import short_source_type
from .common import echo_json, handle_errors
from .exit_codes import VERIFY_EXIT_CODES

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
    Only exit 0 means the disclosure is what its signer wrote. The exit code is the active
    (newest) manifest's; the manifests before it (parentOf ingredients, e.g. from an earlier
    disclosure or a camera) are listed as the history, each with its own state ("chain" in
    the JSON).

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
        why = ("no --trust anchor was given, so no signer can be trusted; add --trust CA.pem" if not trust
               else "the signer does not chain to any --trust anchor given")
        click.echo(f"not trusted (--require-trusted): {why}", err=True)
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
            short_source_type(t) for t in result.source_types))
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
    if len(result.chain) > 1:
        lines.append("  history (newest first):")
        for link in result.chain:
            types = ", ".join(short_source_type(t) for t in link.source_types) or "no source type"
            how = f"{link.relationship} " if link.relationship else ""
            lines.append(f"    {'  ' * link.depth}{how}{link.label or '(no manifest)'}: "
                         f"{link.status}; {types}; {', '.join(link.actions) or 'no actions'}"
                         + (f"; by {link.claim_generator}" if link.claim_generator else ""))
    # For a valid manifest the only code is signingCredential.untrusted, which "valid"
    # already says in words; listing it there would read like a failure.
    if result.failure_codes and result.status not in ("valid", "trusted"):
        lines.append("  validation: " + ", ".join(result.failure_codes))
    if result.error:
        lines.append(f"  error: {result.error}")
    return "\n".join(lines)
