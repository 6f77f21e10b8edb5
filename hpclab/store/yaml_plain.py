"""A plain YAML document built straight from libyaml's parser events.

``yaml.load`` composes a tree of nodes (each scalar resolved by a Python call), then walks
it to construct the values: for a 25-line config that is two thirds of the time, and a
cold index loads 10,000 of them. A config as ``yaml.safe_dump`` writes it (mappings,
sequences, scalars; no anchors, aliases, tags or merge keys) is built here from the
events in one loop, plain scalars resolved once per distinct text, with PyYAML's own
resolver and constructors: the same values ``yaml.load(..., Loader=SafeLoader)`` gives.
Anything else (an anchor, an alias, a tag, a merge key, a mapping as a key, nesting past
:data:`MAX_DEPTH`) returns :data:`NOT_PLAIN`, and the caller loads the document the full
way (with its alias limit and its errors).
"""

from __future__ import annotations

import re
from typing import Any, Final

import yaml
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

NOT_PLAIN: Final = object()
"""What :func:`load_plain` returns for a document it does not build."""
MAX_DEPTH = 64
"""Deeper documents go the full way (which refuses what it cannot compose)."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _NULL, _BOOL = (
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
)
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SIMPLE_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")  # int(text) is PyYAML's value
_NO_KEY = object()  # a mapping's next scalar is a key
_MEMO_MAX = 65_536  # entries, each of a text of at most _MEMO_TEXT characters
_MEMO_TEXT = 64
_memo: dict[str, Any] = {}  # plain scalar text -> its value (or NOT_PLAIN)


def load_plain(raw: bytes) -> Any:
    """The document ``raw`` holds, or :data:`NOT_PLAIN`. A syntax error raises
    ``yaml.YAMLError`` as ``yaml.load`` would."""
    loader = _Loader(raw)
    try:
        return _build(loader)
    finally:
        loader.dispose()


def _build(loader: Any) -> Any:
    get = loader.get_event
    get()  # StreamStartEvent
    event = get()
    if type(event) is StreamEndEvent:
        return None  # an empty stream
    if type(event) is not DocumentStartEvent or event.tags:
        return NOT_PLAIN
    # containers being built, innermost last; for a mapping, the key awaiting its value
    stack: list[Any] = []
    keys: list[Any] = []
    root: Any = NOT_PLAIN
    while True:
        event = get()
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                return NOT_PLAIN
            value = _scalar(loader, event.value) if event.implicit[0] else event.value
            if value is NOT_PLAIN:
                return NOT_PLAIN
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                return NOT_PLAIN
            if stack and type(stack[-1]) is dict and keys[-1] is _NO_KEY:
                return NOT_PLAIN  # a mapping or a sequence as a key
            stack.append({} if kind is MappingStartEvent else [])
            keys.append(_NO_KEY)
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = stack.pop()
            keys.pop()
        elif kind is DocumentEndEvent:
            if type(get()) is not StreamEndEvent:
                return NOT_PLAIN  # more than one document: yaml.load says so, the full way
            return root
        else:  # an alias
            return NOT_PLAIN
        if not stack:
            root = value
            continue
        parent = stack[-1]
        if type(parent) is list:
            parent.append(value)
        elif keys[-1] is _NO_KEY:
            keys[-1] = value
        else:
            parent[keys[-1]] = value
            keys[-1] = _NO_KEY


def _scalar(loader: Any, text: str) -> Any:
    """A plain scalar's value by PyYAML's implicit resolvers (its bool, int, float, null,
    timestamp), NOT_PLAIN for a merge or value key; remembered per text."""
    hit = _memo.get(text, _memo)
    if hit is not _memo:
        return hit
    tag = loader.resolve(ScalarNode, text, (True, False))
    value: Any
    if tag == _STR:
        value = text
    elif tag == _NULL:
        value = None
    elif tag == _BOOL:
        value = loader.bool_values[text.lower()]
    elif tag == _INT:
        value = (
            int(text)
            if _SIMPLE_INT.match(text)
            else loader.construct_yaml_int(ScalarNode(tag, text))
        )
    elif tag == _FLOAT:
        value = loader.construct_yaml_float(ScalarNode(tag, text))
    elif tag == _TIMESTAMP:
        return loader.construct_yaml_timestamp(ScalarNode(tag, text))  # mutable: no memo
    else:
        value = NOT_PLAIN
    if len(text) <= _MEMO_TEXT:  # keys and short values repeat; a long text is not kept
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        _memo[text] = value
    return value
