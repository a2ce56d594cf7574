"""``provenance eval DIR``: measure copy detection on a sample of your own archive."""

from __future__ import annotations

from pathlib import Path

import click

from ..evaluate import TARGET_FMR, evaluate
from .common import echo_json, handle_errors, quiet_option, warn


@click.command("eval")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--sample", default=50, show_default=True,
              help="At most this many originals and this many held-out files per media type.")
@click.option("--seed", default=0, show_default=True, help="Seed for the sample and the transformed copies.")
@click.option("--target-fmr", default=TARGET_FMR, show_default=True, type=float,
              help="Largest acceptable share of held-out files that match; thresholds are suggested for it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@quiet_option
@handle_errors
def eval_command(directory: Path, sample: int, seed: int, target_fmr: float, as_json: bool, quiet: bool) -> None:
    """Calibrate on your own archive: index a sample of DIR in a temporary index, check transformed
    copies of it (JPEG, resize, crop, rotation, mirror, colour, blur, noise, captions, padding,
    screenshot framing, perspective; for texts: typos, homoglyphs, zero-width characters, word drops,
    reordering) and held-out files, and report recall per family, false matches, and suggested
    thresholds. Your own index is not touched.

    \b
    Example:
      provenance eval --sample 30 ./photos
    """
    result = evaluate(directory, sample=sample, seed=seed, target_fmr=target_fmr,
                      on_progress=lambda m: warn(m, quiet or as_json))
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"{result.directory}: originals {result.originals}, held-out {result.held_out}"
               + (f", {result.skipped_files} unreadable files skipped" if result.skipped_files else ""))
    click.echo("")
    click.echo(f"{'media':6} {'family':18} {'n':>4} {'recall':>7}  median value against the original")
    for f in result.families:
        mv = "-" if f.median_value is None else f"{f.median_value:g} ({f.value_signal})"
        click.echo(f"{f.media:6} {f.family:18} {f.n:4d} {f.recall:7.2f}  {mv}")
    if result.misses:
        click.echo("")
        click.echo(f"missed copies ({len(result.misses)}; first 10, with each signal's value):")
        for miss in result.misses[:10]:
            vals = ", ".join(f"{s} {v:g}" for s, v in miss["values"].items()) or "no signal found it"
            click.echo(f"  {miss['file']} [{miss['family']}]: {vals}")
    click.echo("")
    for media, rate in result.false_match_rate.items():
        click.echo(f"false matches on held-out {media} files: {rate:.3f} ({result.held_out[media]} files)")
    for fm in result.false_matches[:10]:
        click.echo(f"  {fm['file']}: {fm['verdict']} of {fm['item']} via {fm['signal']} "
                   f"({fm['value']:g}, threshold {fm['threshold']:g})")
    click.echo("")
    click.echo(f"suggested thresholds (false-match rate on held-out files <= {result.target_fmr:g}):")
    for s in result.suggestions:
        click.echo(f"  {s.signal:13} current {s.direction} {s.current:g} (recall {s.recall_at_current:.2f}, "
                   f"false matches {s.false_match_rate_at_current:.3f}) -> suggested {s.direction} {s.suggested:g} "
                   f"(recall {s.recall:.2f}, false matches {s.false_match_rate:.3f})")
        if s.note:
            click.echo(f"      ({s.note})")
