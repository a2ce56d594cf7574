"""Write one ``<!-- section:NAME -->`` block of ``bench/RESULTS.md`` and keep every other block as it is.

For benchmarks run on their own (``python -m bench.translation``, ``python -m bench.text_speed``) rather
than through ``python -m bench``, which keeps sections it does not run (see ``bench/__main__.py``).
"""

from __future__ import annotations

import re

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
