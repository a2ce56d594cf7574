"""``provenance``: index prior content, check drafts and images against it."""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

import click

from ..checker import AddResult
from ..content import MAX_IMAGE_BYTES
from ..errors import BadInputError
from ..files import iter_files, read_stream_bounded
from ..report import Report, reports_document
from .common import (
    EXIT_BAD_INPUT,
    EXIT_MATCH,
    EXIT_OK,
    StatusLine,
    echo_json,
    follow_links_option,
    handle_errors,
    index_option,
    open_index,
    progress_option,
    quiet_option,
    warn,
)

# The other commands live in their own modules, imported only when run (or listed by --help): importing
# them all cost every `provenance check` ~0.2 s (C2PA signing, XMP, the audit report), a fifth of a
# pre-commit hook's budget.
_LAZY: dict[str, tuple[str, str]] = {
    "keys": ("keys", "keys"),           # disclosure manifests (issue 4): keys new, disclose, verify, lookup
    "disclose": ("disclose", "disclose"),
    "verify": ("verify", "verify"),
    "lookup": ("lookup", "lookup"),
    "inspect": ("inspect_origin", "inspect_command"),
    "audit": ("audit", "audit"),        # issue 3
    "eval": ("evaluate", "eval_command"),  # issue 5
    "doctor": ("doctor", "doctor"),     # issue 12
    "serve": ("serve", "serve"),        # issue 13; FastAPI is imported only when it runs
}


class _LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs or help lists it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attr = _LAZY[cmd_name]
            self.add_command(getattr(importlib.import_module(f"{__package__}.{module}"), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="provenance-checker")
def main() -> None:
    """Check drafts and images for originality against an index of prior content.

    \b
    Example:
      provenance init --index ./idx
      provenance add --index ./idx --recursive --source blog ./published
      provenance check --index ./idx draft.md photo.jpg
    """


@main.command()
@index_option
@handle_errors
def init(index_path: Path | None) -> None:
    """Create an empty index (a folder with a SQLite catalog and FAISS snapshots).

    \b
    Example:
      provenance init --index ./idx
    """
    idx = open_index(index_path, create=True)
    path = idx.path
    idx.close()
    click.echo(f"initialised index at {path}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--source", "source_label", default=None, help="Label recorded with the items (e.g. 'blog').")
@click.option("--recursive", "-r", is_flag=True, help="Walk folders.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files or folders matching GLOB.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with a result per input.")
@follow_links_option  # issue 11
@index_option
@quiet_option
@handle_errors
def add(paths: tuple[Path, ...], source_label: str | None, recursive: bool, exclude: tuple[str, ...],
        as_json: bool, follow_links: bool, index_path: Path | None, quiet: bool) -> None:
    """Add files (or '-' for stdin) to the index. The index is created if missing.

    Adding the same bytes again does not create a second item. A bad file is reported on stderr
    and skipped; the rest are added (exit code 3 if any were bad).

    \b
    Example:
      provenance add --index ./idx --recursive --source archive ./old-posts ./photos
    """
    bad: list[tuple[str, str]] = []

    def on_error(p: Path, why: str) -> None:
        bad.append((str(p), why))
        warn(f"skipped {p}: {why}")

    sources: list = []
    for p in paths:
        if str(p) == "-":
            sources.append(read_stream_bounded(sys.stdin.buffer, MAX_IMAGE_BYTES))  # issue 11: bounded
        else:
            sources.extend(iter_files([p], recursive=recursive, exclude=exclude, on_error=on_error,
                                      follow_links=follow_links))
    idx = open_index(index_path, create=True)
    results: list[AddResult] = []
    show_progress = not quiet and sys.stderr.isatty() and len(sources) > 1
    try:
        with click.progressbar(length=len(sources), label="adding", file=sys.stderr,
                               show_pos=True, show_eta=True) if show_progress else _NoBar() as bar:
            def on_result(r: AddResult) -> None:
                results.append(r)
                bar.update(1)
                if r.status == "error":
                    warn(f"skipped {r.error}")
            idx.add(sources, source=source_label, on_result=on_result)
    finally:
        idx.close()
    counts = {s: sum(r.status == s for r in results) for s in ("added", "exists", "error")}
    counts["error"] += len(bad)
    if as_json:
        echo_json({"index": str(idx.path), "counts": counts,
                   "results": [vars(r) for r in results] + [
                       {"name": n, "status": "error", "error": f"{n}: {w}"} for n, w in bad]})
    else:
        click.echo(f"added {counts['added']}, already present {counts['exists']}, "
                   f"errors {counts['error']} (index {idx.path})")
    sys.exit(EXIT_BAD_INPUT if counts["error"] else EXIT_OK)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--fail-on", type=click.Choice(["exact", "near-duplicate", "partial", "paraphrase", "never"]),
              default="near-duplicate", show_default=True,
              help="Exit 1 when any input's verdict is this or stronger (partial: only a region of an "
                   "indexed picture appears; it does not fail the default).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (schema provenance.report/1).")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="One JSON report per line.")
@click.option("--recursive", "-r", is_flag=True, help="Walk folders.")
@click.option("--allow-source", "allow_sources", multiple=True, metavar="LABEL",
              help="Matches against items with this source label are shown but do not fail the gate "
                   "(repeatable; e.g. your own archive).")
@click.option("--origin/--no-origin", default=True, show_default=True,
              help="Also read what each file says about its own origin (C2PA, IPTC, generator settings, "
                   "watermarks), reported under 'provenance'.")
@follow_links_option  # issue 11
@index_option
@progress_option
@quiet_option
@handle_errors
def check(paths: tuple[Path, ...], fail_on: str, as_json: bool, as_jsonl: bool, recursive: bool,
          allow_sources: tuple[str, ...], origin: bool, follow_links: bool, index_path: Path | None,
          progress: bool | None, quiet: bool) -> None:
    """Check drafts and images ('-' reads stdin) against the index.

    Verdicts, strongest first: exact, near-duplicate, partial, paraphrase, original. Exit codes: 0 clean,
    1 a verdict at or above --fail-on, 3 a bad input (and nothing failed), 4 index problem,
    5 missing component.

    \b
    Example:
      provenance check --index ./idx --fail-on paraphrase draft.md
      cat draft.md | provenance check --index ./idx --json -
    """
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl are exclusive")
    import json

    idx = open_index(index_path)
    reports: list[Report] = []
    bad = 0

    status = StatusLine.from_options(progress, quiet)

    def on_error(p: Path, why: str) -> None:
        nonlocal bad
        bad += 1
        status.clear()
        click.echo(f"skipped {p}: {why}", err=True)

    try:
        inputs: list = []
        for p in paths:
            if str(p) == "-":
                inputs.append((read_stream_bounded(sys.stdin.buffer, MAX_IMAGE_BYTES), "<stdin>"))  # issue 11
            else:
                inputs.extend((f, str(f)) for f in iter_files([p], recursive=recursive, on_error=on_error,
                                                              follow_links=follow_links))
        for n, (src, name) in enumerate(inputs, 1):
            where = f"[{n}/{len(inputs)}] {printable(name)}" if len(inputs) > 1 else printable(name)
            try:
                report = idx.check(src if isinstance(src, bytes) else Path(src), name, origin=origin,
                                   allow_sources=allow_sources,
                                   progress=status.prefixed(where))
            except BadInputError as exc:
                on_error(Path(name), str(exc).removeprefix(f"{name}: "))
                continue
            reports.append(report)
            if as_jsonl:
                status.clear()
                click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    finally:
        status.clear()
        idx.close()
    if as_json:
        echo_json(reports_document(reports))
    elif not as_jsonl:
        click.echo(render_table(reports))
    if any(r.fails(fail_on) for r in reports):
        sys.exit(EXIT_MATCH)
    sys.exit(EXIT_BAD_INPUT if bad else EXIT_OK)


def printable(name: str | None) -> str:
    """``name`` with control and invisible characters escaped, so a file name cannot break a table row
    or hide text (a newline, a right-to-left override)."""
    if name is None:
        return "-"
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def render_table(reports: list[Report]) -> str:
    """The human-readable form of check results (every line comes from the evidence's own methods).

    Scores are calibrated across signals: 0.5 is the deciding signal's threshold, 1 an identical copy."""
    lines = []
    for r in reports:
        lines.append(f"{printable(r.path)}: {r.verdict.upper()}" + (f" (score {r.score:.2f})" if r.matches else ""))
        for m in r.matches[:5]:
            # The score is calibrated (0.5 = the deciding signal's threshold); each signal's own value and
            # threshold follow on the evidence lines.
            src = f" [{m.source}]" if m.source else ""
            allowed = f" — allowed: {m.allowed}" if m.allowed else ""
            allowed += f" — quoted: {m.quoted}" if m.quoted else ""
            lines.append(f"  {m.verdict:<14} item {m.id} {printable(m.path)}{src} via {m.signal} "
                         f"(score {m.score:.2f}){allowed}")
            lines += [f"      {line}" for line in m.lines()]
        for m in r.near_misses:
            deciding = next(o for o in m.observations if o.signal == m.signal)
            lines.append(f"  near miss: item {m.id} {printable(m.path)} {m.signal} {deciding.summary()}")
            lines += [f"      {o.signal}: {o.summary()}" for o in m.observations if o is not deciding]
        if r.origin is not None and r.origin.signals:
            lines.append(f"  provenance: suggests {r.origin.suggestion}"
                         + (f" ({'; '.join(r.origin.evidence[:2])})" if r.origin.evidence else ""))
        for s in r.skipped:
            lines.append(f"  (skipped {s['signal']}: {s['reason']})")
    return "\n".join(lines) if lines else "no inputs checked"


@main.command()
@click.option("--source", "source_label", default=None, help="Only items with this source label.")
@click.option("--path", "path_glob", default=None, metavar="GLOB", help="Only items whose path matches GLOB.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def items(source_label: str | None, path_glob: str | None, as_json: bool, index_path: Path | None) -> None:
    """List the indexed items (id, media, source, path): the ids that matches and `remove` use.

    \b
    Example:
      provenance items --index ./idx --source blog --path '*2024*'
    """
    import fnmatch

    idx = open_index(index_path)
    try:
        rows = [r for r in idx.items() if (source_label is None or r.source == source_label)
                and (path_glob is None or fnmatch.fnmatch(r.path or "", path_glob))]
    finally:
        idx.close()
    if as_json:
        echo_json({"items": [{"id": r.id, "media": r.media, "source": r.source, "path": r.path,
                              "sha256": r.sha256, "size": r.size, "added_at": r.added_at} for r in rows]})
        return
    for r in rows:
        click.echo(f"{r.id:>6}  {r.media:<5}  {r.source or '-':<12}  {printable(r.path)}")
    if not rows:
        click.echo("no items match", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def info(as_json: bool, index_path: Path | None) -> None:
    """Show what the index holds and the signals with their thresholds.

    \b
    Example:
      provenance info --index ./idx
    """
    idx = open_index(index_path)
    try:
        data = idx.info()
    finally:
        idx.close()
    if as_json:
        echo_json(data)
        return
    click.echo(f"index: {data['index']}")
    for k, v in sorted(data["counts"].items()):
        click.echo(f"  {k}: {v}")
    click.echo("signals:")
    for s in data["signals"]:
        click.echo(f"  {s['name']} v{s['version']} ({s['index']}, {'/'.join(s['media'])}) threshold "
                   f"{s['threshold']}{' model ' + s['model'] if s['model'] else ''}")


@main.command()
@click.argument("item", type=int)
@index_option
@handle_errors
def remove(item: int, index_path: Path | None) -> None:
    """Remove an item (by id, as shown in matches) so it never matches again.

    \b
    Example:
      provenance remove --index ./idx 42
    """
    idx = open_index(index_path)
    try:
        row = idx.remove(item)
    finally:
        idx.close()
    click.echo(f"removed item {row.id} ({row.path})")


@main.command()
@index_option
@handle_errors
def rebuild(index_path: Path | None) -> None:
    """Back-fill signals installed after items were added, then rebuild the FAISS indexes from the
    catalog (after an upgrade, a new signal plugin or a damaged snapshot).

    \b
    Example:
      provenance rebuild --index ./idx
    """
    idx = open_index(index_path)
    try:
        out = idx.rebuild()
    finally:
        idx.close()
    filled = out.pop("backfilled", None)
    if filled:
        click.echo(f"back-filled {', '.join(filled['signals'])} for {filled['items']} items")
        for where in filled["unavailable"]:
            warn(f"cannot back-fill {where}: its file is gone or changed (the catalog keeps no pixels); "
                 "add it again to fingerprint it with the new signals")
    click.echo("rebuilt " + ", ".join(f"{k}: {v}" for k, v in out.items()))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@index_option
@handle_errors
def demo(as_json: bool, index_path: Path | None) -> None:
    """Index the bundled sample corpus and check the bundled drafts against it.

    Uses a temporary index unless --index is given. Shows every verdict on real model output.

    \b
    Example:
      provenance demo
    """
    from ..samples import build_demo

    with tempfile.TemporaryDirectory(prefix="provenance-demo-") as tmp:
        where = index_path or Path(tmp) / "index"
        idx = open_index(where, create=True)
        try:
            reports = build_demo(idx, Path(tmp))
        finally:
            idx.close()
    if as_json:
        echo_json(reports_document(reports))
    else:
        click.echo(render_table(reports))


if __name__ == "__main__":  # pragma: no cover
    main()
