"""The event-built YAML loader gives exactly what yaml.load gives, or steps aside."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import yaml

from hpclab.errors import StoreError
from hpclab.store.reading import load_yaml
from hpclab.store.yaml_plain import MAX_DEPTH, NOT_PLAIN, load_plain


def same(a: Any, b: Any, *, ordered: bool = True) -> bool:
    """Equal values of the same types all the way down (True is not 1, NaN is NaN), and
    mappings' keys in the same order unless not ``ordered``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if ordered and not all(same(k, k2) for k, k2 in zip(a, b, strict=True)):
            return False
        return a.keys() == b.keys() and all(same(a[k], b[k], ordered=ordered) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(
            same(x, y, ordered=ordered) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def reference(text: str) -> Any:
    return yaml.load(text, Loader=yaml.SafeLoader)  # PyYAML's pure-Python loader


PLAIN = [
    "",
    "# only a comment\n",
    "---\n",
    "--- 3\n...\n",
    "%YAML 1.1\n---\na: 1\n",
    "a: 1\nb: 2\n",
    "a:\nb: ~\nc: null\nd: Null\ne: NULL\n",
    "t: [yes, no, on, off, true, false, Yes, NO, On, OFF, y, n]\n",
    "i: [0, -0, +1, 017, 0o17, 0x1F, 0b101, 1_000, '1', 1:30, -1:30:00, 09, 010]\n",
    "f: [1.0, -1.5, 1e-3, 1.0e-3, 1.0e+3, .5, 1., .inf, -.Inf, +.INF, .nan, .NaN, 1_0.5]\n",
    "f: [6.8523015e+5, 685.230_15e+03, 190:20:30.15, 0.0003, -0.0]\n",
    "d: [2020-01-01, 2001-12-14t21:59:43.10-05:00, 2001-12-14 21:59:43.10, 2002-12-14]\n",
    "s: ['quoted', \"dq\\n\\ttab\", 'it''s', '', \"\", plain text here, a#b, 'a: b']\n",
    "empty: [[], {}, [[]], {a: {}}]\n",
    "flow: [1, 2, {a: b, c: [d, e]}]\n",
    "seq:\n- a\n- b: 1\n  c: 2\n- - x\n  - y\n-\n- ''\n",
    "multi: this is\n  a plain scalar\n  over lines\n",
    "lit: |\n  line one\n  line two\n\nfold: >-\n  folded\n  text\nkeep: |+\n  kept\n\n",
    "model:\n  hidden: 64\n  depth: 2\noptim:\n  name: adam\n  lr: 0.0003\n",
    "1: one\n2.5: two\nnull: three\ntrue: four\n~: five\n",
    "a: 1\na: 2\n",
    'unicode: [héllo, 日本, "\\u00e9", "\\U0001F600"]\n',
    "? complex key\n: value\n",
    "key with spaces: v\n'quoted key': w\n\"dq key\": x\n",
]


@pytest.mark.parametrize("text", PLAIN)
def test_a_plain_document_is_built_as_yaml_load_builds_it(text: str) -> None:
    built = load_plain(text.encode())
    assert built is not NOT_PLAIN
    assert same(built, reference(text)), (built, reference(text))
    assert same(load_yaml(text, "x.yaml"), reference(text))


NOT_BUILT = [
    "a: &x 1\nb: *x\n",
    "a: &x [1]\n",
    "a: !!str 1\n",
    "a: !custom x\n",
    "!!map {a: 1}\n",
    "a: ! 1\n",
    "base: {x: 1}\nderived:\n  <<: {y: 2}\n",
    "=: value\n",
    "? [a, b]\n: v\n",
    "? {a: 1}\n: v\n",
    "a: 1\n---\nb: 2\n",
    "%TAG !e! tag:example.com,2000:\n---\na: 1\n",
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
]


@pytest.mark.parametrize("text", NOT_BUILT)
def test_anything_beyond_plain_structure_goes_the_full_way(text: str) -> None:
    assert load_plain(text.encode()) is NOT_PLAIN
    try:
        expected = reference(text)
    except yaml.YAMLError:
        with pytest.raises(StoreError, match="x.yaml: not valid YAML"):
            load_yaml(text, "x.yaml")
    else:
        assert same(load_yaml(text, "x.yaml"), expected)


def test_a_syntax_error_is_still_an_error_naming_the_file() -> None:
    with pytest.raises(StoreError, match=r"cfg.yaml: not valid YAML at line 2"):
        load_yaml("a: [1, 2\nb: c: d\n", "cfg.yaml")


def test_a_deep_document_keeps_its_refusal() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(StoreError, match="d.yaml: not valid YAML"):
        load_yaml(deep, "d.yaml")


def test_an_alias_bomb_is_still_refused() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 9)]
    with pytest.raises(StoreError, match="bomb.yaml: YAML aliases expand it past"):
        load_yaml("\n".join(lines) + "\n", "bomb.yaml")


_ALPHABET = list("abcXYZ019 .:-_#'\"\\[]{},&*!|>%@`?~=<\t\né日") + [
    "yes", "No", "null", "~", "0x1F", "017", "1e3", "1.5", ".inf", ".nan", "2020-01-01",
    "1:30", "true", "<<", "=", "- ", ": ", " #",
]  # fmt: skip


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth < 4 and roll < 0.2:
        return {_random_key(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.35:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(
        [
            lambda: "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 8))),
            lambda: rng.randint(-(10**20), 10**20),
            lambda: rng.choice([0.0, -0.0, math.inf, -math.inf, math.nan, 1e-300, 3e300]),
            lambda: rng.uniform(-1e6, 1e6),
            lambda: rng.choice([True, False, None]),
        ]
    )()


def _random_key(rng: random.Random) -> Any:
    if rng.random() < 0.8:
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 6)))
    return rng.choice([1, -2, 2.5, True, None])


@pytest.mark.parametrize("style", [False, True, None])
def test_random_documents_as_safe_dump_writes_them_load_as_yaml_load_loads_them(
    style: bool | None,
) -> None:
    rng = random.Random(20261207)
    built = 0
    for _ in range(600):
        doc = {_random_key(rng): _random_value(rng, 0) for _ in range(rng.randint(0, 6))}
        try:
            text = yaml.safe_dump(
                doc, sort_keys=rng.random() < 0.5, default_flow_style=style, allow_unicode=True
            )
        except TypeError:  # keys of mixed types do not sort
            text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=style)
        out = load_plain(text.encode())
        if out is not NOT_PLAIN:
            built += 1
            assert same(out, reference(text)), text
            assert same(out, doc, ordered=False), text  # what was dumped comes back
    assert built == 600  # safe_dump never writes what needs the full way


def test_the_scalar_memo_keeps_short_texts_only_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keys and short values repeat across 10,000 configs and are resolved once; a long
    text is resolved every time, not kept, and the memo never holds past its bound."""
    import hpclab.store.yaml_plain as yp

    monkeypatch.setattr(yp, "_memo", {})
    monkeypatch.setattr(yp, "_MEMO_MAX", 50)
    long = "x" * (yp._MEMO_TEXT + 1)
    assert load_plain(f"short: {long}\n".encode()) == {"short": long}
    assert "short" in yp._memo and long not in yp._memo
    for i in range(200):
        assert load_plain(f"k{i}: v{i}\n".encode()) == {f"k{i}": f"v{i}"}
        assert len(yp._memo) <= 50
