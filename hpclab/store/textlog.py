"""The run's text log (``logs/text.jsonl``): text a run recorded with ``run.log_text`` or
TensorBoard's ``add_text``, one JSON object ``{tag, step, text, logged_at}`` a line."""

from __future__ import annotations

import json
from typing import TypedDict

from hpclab.errors import StoreError
from hpclab.store.layout import RunPaths


class TextEntry(TypedDict):
    tag: str
    step: int | None
    text: str
    logged_at: str


def read_text_log(paths: RunPaths) -> list[TextEntry]:
    """Every text entry of the run, oldest first ([] when it logged none).

    A last line without its newline is being written right now and is skipped; any other
    line that is not an entry is a :class:`StoreError` naming the file and line.
    """
    try:
        raw = paths.text_jsonl.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = raw.split("\n")
    complete, partial = lines[:-1], lines[-1]
    del partial  # a writer mid-append
    out: list[TextEntry] = []
    for n, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise StoreError(f"{paths.text_jsonl}: line {n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise StoreError(f"{paths.text_jsonl}: line {n}: expected an object with 'text'")
        step = obj.get("step")
        out.append(
            {
                "tag": str(obj.get("tag", "")),
                "step": step if isinstance(step, int) else None,
                "text": obj["text"],
                "logged_at": str(obj.get("logged_at", "")),
            }
        )
    return out
