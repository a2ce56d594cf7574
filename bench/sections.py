"""Write one ``<!-- section:NAME -->`` block of ``bench/RESULTS.md`` and keep every other block as it is.

For benchmarks run on their own (``python -m bench.translation``, ``python -m bench.text_speed``) rather
than through ``python -m bench``, which keeps sections it does not run (see ``bench/__main__.py``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from .common import ROOT

RESULTS = ROOT / "RESULTS.md"


def write_section(name: str, markdown: str) -> None:
    """Replace the section ``name`` in RESULTS.md, or append it at the end."""
    text = RESULTS.read_text() if RESULTS.exists() else "# provenance-checker benchmark results\n"
    block = f"<!-- section:{name} -->\n{markdown.strip()}\n<!-- /section:{name} -->"
    pattern = re.compile(rf"<!-- section:{re.escape(name)} -->\n.*?<!-- /section:{re.escape(name)} -->", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def section_cli(name: str, doc: str, run: Callable[[bool], Any], summarise: Callable[[Any, bool], str]) -> None:
    """``python -m bench.X [--quick] [--write]``: ``summarise(run(quick), quick)`` printed, and with
    ``--write`` put in the section ``name`` of RESULTS.md; ``doc``'s first line is the help text."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true", help="write the section of bench/RESULTS.md")
    args = ap.parse_args()
    md = summarise(run(args.quick), args.quick)
    print(md)
    if args.write:
        write_section(name, md)
