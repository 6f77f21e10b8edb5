"""Rewrite the README's catalog schema reference from hpclab/catalog/schema.py.

python scripts/schema_reference.py        # rewrites README.md in place
"""

from __future__ import annotations

from pathlib import Path

from hpclab.catalog.schema import TABLES

README = Path(__file__).resolve().parents[1] / "README.md"


def reference() -> list[str]:
    lines = []
    for table, columns in TABLES.items():
        cols = ", ".join(f"`{c.name}` ({c.type.lower()}: {c.doc})" for c in columns)
        lines += [f"**`{table}`**: {cols}.", ""]
    return lines


def main() -> None:
    text = README.read_text().splitlines()
    head = text.index("### Schema reference")
    start = next(i for i in range(head, len(text)) if text[i].startswith("**`"))
    end = start
    while end < len(text) and (text[end].startswith("**`") or not text[end].strip()):
        end += 1
    README.write_text("\n".join(text[:start] + reference() + text[end:]) + "\n")


if __name__ == "__main__":
    main()
