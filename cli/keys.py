"""``provenance keys new``: make or import a signing identity for disclosure manifests."""

from __future__ import annotations

from pathlib import Path

import click

from ..disclosure import import_signing_identity
from ..identities import new_signing_identity
from .common import echo_json, handle_errors


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
