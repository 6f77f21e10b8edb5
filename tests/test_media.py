"""Images, histograms and tables of a run (issue 18): stored beside it (PNG by content,
histogram bins in Zarr, tables as Parquet), read back exactly, indexed in the catalog's
``media`` table, TensorBoard's add_image/add_images/add_histogram routed into them, and
each limit a one-line MediaError naming the item."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import index_store
from hpclab.errors import MediaError
from hpclab.store import Store
from hpclab.tracking import media as media_mod
from hpclab.tracking.media import png, read_media_index

PIL = pytest.importorskip("PIL.Image")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(PIL.open(io.BytesIO(path.read_bytes())))


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_png_round_trips_through_pil(channels: int | None) -> None:
    rng = np.random.default_rng(0)
    shape = (7, 5) if channels is None else (7, 5, channels)
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    back = np.asarray(PIL.open(io.BytesIO(png(arr))))
    assert back.shape == arr.shape and (back == arr).all()


def test_images_are_stored_once_per_content_and_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    run = hpclab.init("lab", {}, store=store.root)
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    run.log_image("samples/rgb", rgb, step=0)
    run.log_image("samples/rgb", rgb, step=1)  # the same picture: one file
    chw = np.linspace(0, 1, 3 * 2 * 5).reshape(3, 2, 5)  # floats in [0, 1], CHW
    run.log_image("samples/chw", chw, step=2)
    pil = PIL.fromarray(rgb)
    run.log_image("samples/pil", pil)
    file = tmp_path / "pic.png"
    pil.save(file)
    run.log_image("samples/file", file, step=3)
    assert run.paths is not None
    entries = read_media_index(run.paths.media_dir)
    assert [(e["name"], e["step"]) for e in entries] == [
        ("samples/rgb", 0), ("samples/rgb", 1), ("samples/chw", 2), ("samples/pil", 0),
        ("samples/file", 3),
    ]  # fmt: skip
    assert entries[0]["file"] == entries[1]["file"] == entries[3]["file"]
    images = run.paths.media_dir / "images"
    assert len(list(images.iterdir())) == 3  # rgb (and pil: the same pixels), chw, file
    assert (_pixels(run.paths.media_dir / entries[0]["file"]) == rgb).all()
    got = _pixels(run.paths.media_dir / entries[2]["file"])
    assert got.shape == (2, 5, 3)
    assert (got == np.rint(np.moveaxis(chw, 0, -1) * 255).astype(np.uint8)).all()
    assert entries[0]["width"] == 6 and entries[0]["height"] == 4
    for bad, match in (
        (np.zeros((2, 2, 2, 2)), "shape"),
        (np.zeros((6000, 5000), dtype=np.uint8), "pixels"),
        ("no/such/file.png", "cannot read"),
        (b"GIF89a...", "not a PNG, JPEG or WebP"),
        (np.array([["a"]]), "not pixels"),
    ):
        with pytest.raises(MediaError, match=match):
            run.log_image("bad", bad)
    run.finish()


def test_histograms_are_bins_in_zarr(tmp_path: Path) -> None:
    import zarr

    run = hpclab.init("lab", {}, store=tmp_path / "store")
    values = np.concatenate([np.random.default_rng(1).normal(size=1000), [np.nan, np.inf]])
    run.log_histogram("weights/fc1", values, step=10, bins=16)
    run.log_histogram("weights/fc1", values * 2, step=20, bins=16)
    assert run.paths is not None
    entries = read_media_index(run.paths.media_dir)
    assert [(e["step"], e["n"], e["nonfinite"], e["row"]) for e in entries] == [
        (10, 1000, 2, 0), (20, 1000, 2, 1),
    ]  # fmt: skip
    arr = zarr.open_array(store=str(run.paths.media_dir / entries[1]["file"]), mode="r")
    assert arr.shape == (2, 19)
    finite = values[np.isfinite(values)] * 2
    counts, _ = np.histogram(finite, bins=16, range=(finite.min(), finite.max()))
    assert arr[1, 0] == 20 and arr[1, 1] == finite.min() and arr[1, 2] == finite.max()
    assert (arr[1, 3:] == counts).all()
    with pytest.raises(MediaError, match="16"):
        run.log_histogram("weights/fc1", values, step=30, bins=8)
    with pytest.raises(MediaError, match="bins must be"):
        run.log_histogram("w", values, bins=0)
    with pytest.raises(MediaError, match="not numbers"):
        run.log_histogram("w", ["a", "b"])
    run.finish()


class FrameLike:
    """What log_table takes of a DataFrame: to_dict("records")."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def to_dict(self, orient: str) -> list[dict[str, Any]]:
        assert orient == "records"
        return self.records


def test_tables_are_parquet_and_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "store")
    run = hpclab.init("lab", {}, store=store.root)
    rows = [{"prompt": "2+2", "answer": "4", "score": 1.0}, {"prompt": "<b>x</b>", "score": None}]
    run.log_table("eval/samples", rows, step=5)
    run.log_table("eval/frame", FrameLike(rows), step=6)
    run.log_table("eval/cols", {"a": [1, 2], "b": ["x", [1, 2]]}, step=7)
    run.log_image("pic", np.zeros((2, 2), dtype=np.uint8), step=5)
    run.log_histogram("h", [1, 2, 3], step=5)
    assert run.paths is not None
    entries = read_media_index(run.paths.media_dir)
    con = connect(store)  # any DuckDB reads the stored file
    file = run.paths.media_dir / entries[0]["file"]
    got = con.execute(f"SELECT prompt, answer, score FROM '{file}'").fetchall()
    assert got == [("2+2", "4", 1.0), ("<b>x</b>", None, None)]
    assert entries[0]["file"] == entries[1]["file"]  # the same table: one file
    cols = con.execute(f"SELECT a, b FROM '{run.paths.media_dir / entries[2]['file']}'").fetchall()
    assert cols == [(1.0, "x"), (2.0, "[1, 2]")]
    monkeypatch.setattr(media_mod, "MAX_TABLE_ROWS", 1)
    with pytest.raises(MediaError, match="eval/big.*2 rows"):
        run.log_table("eval/big", rows)
    with pytest.raises(MediaError, match="all mappings or all sequences"):
        run.log_table("eval/mixed", [{"a": 1}, 3])
    run.finish()
    with open(run.paths.media_index, "a") as f:
        f.write("not json\n")  # a torn line: left out, not a failed pass
    report = index_store(store)
    assert report.errors == 0
    indexed = (
        connect(store)
        .execute("SELECT kind, name, step, n_rows, width, bins FROM media ORDER BY logged_at, name")
        .fetchall()
    )
    assert indexed == [
        ("table", "eval/samples", 5, 2, None, None),
        ("table", "eval/frame", 6, 2, None, None),
        ("table", "eval/cols", 7, 2, None, None),
        ("image", "pic", 5, None, 2, None),
        ("histogram", "h", 5, None, None, 64),
    ]


def test_a_runs_media_has_a_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_mod, "MAX_RUN_ITEMS", 2)
    run = hpclab.init("lab", {}, store=tmp_path / "store")
    run.log_text("note", "text is not media")
    run.log_image("a", np.zeros((2, 2), dtype=np.uint8))
    run.log_image("b", np.ones((2, 2), dtype=np.uint8))
    with pytest.raises(MediaError, match="'c': the run already holds 2 media items"):
        run.log_image("c", np.ones((3, 3), dtype=np.uint8))
    run.finish()
    # a resumed run counts what is stored
    assert run.paths is not None
    again = media_mod.MediaLog(run.paths.media_dir)
    with pytest.raises(MediaError, match="already holds"):
        again.image("d", np.ones((4, 4), dtype=np.uint8))


def test_tensorboard_images_and_histograms_reach_the_run(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    tb = pytest.importorskip("torch.utils.tensorboard")
    run = hpclab.init("lab", {}, store=tmp_path / "store", settings={"tensorboard_events": False})
    writer = tb.SummaryWriter(log_dir=str(tmp_path / "tb"))
    img = torch.rand(3, 4, 5)  # CHW
    writer.add_image("input", img, global_step=3)
    writer.add_image("hwc", img.permute(1, 2, 0), 4, dataformats="HWC")
    writer.add_images("batch", torch.rand(2, 3, 4, 5), global_step=5)
    writer.add_histogram("weights", torch.randn(100), global_step=6)
    writer.add_text("note", "hello", global_step=7)
    writer.close()
    assert run.paths is not None
    entries = read_media_index(run.paths.media_dir)
    assert [(e["kind"], e["name"], e["step"]) for e in entries] == [
        ("image", "input", 3), ("image", "hwc", 4), ("image", "batch/0", 5),
        ("image", "batch/1", 5), ("histogram", "weights", 6),
    ]  # fmt: skip
    assert entries[0]["file"] == entries[1]["file"]  # the same pixels, CHW or HWC
    assert (entries[0]["width"], entries[0]["height"]) == (5, 4)
    texts = [json.loads(line) for line in run.paths.text_jsonl.read_text().splitlines()]
    assert [(t["tag"], t["step"], t["text"]) for t in texts] == [("note", 7, "hello")]
    run.finish()


HOSTILE = '<img src=x onerror="window.pwned=1">'


@pytest.mark.skipif(
    __import__("hpclab.site.chromium", fromlist=["find_chromium"]).find_chromium() is None,
    reason="Chromium is not installed",
)
def test_the_run_page_shows_images_by_step_ridgelines_and_tables(tmp_path: Path) -> None:
    from site_fixtures import served_site

    from hpclab.site.chromium import Chromium
    from hpclab.site.layout import run_href

    store = Store(tmp_path / "store")
    run = hpclab.init("lab", {}, store=store.root)
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log_image("pred", np.full((4, 6), 80 * step, dtype=np.uint8), step=step)
        run.log_histogram("w", np.random.default_rng(step).normal(step, 1, 500), step=step)
    run.log_table("eval", [{"q": "first", "a": 1}], step=0)
    run.log_table("eval", [{"q": HOSTILE, "a": 2}, {"q": "x", "a": 3}], step=2)
    run.finish()
    with served_site(store, tmp_path / "site") as base, Chromium() as browser:
        page = browser.new_page()
        page.goto(base + run_href("lab", run.id))
        page.wait_for(
            "document.getElementById('hl-run').dataset.rendered === '1' &&"
            " document.querySelector('.hl-media-image img').complete",
            timeout=30,
        )
        fig = '.hl-media-image[data-name="pred"]'
        assert page.evaluate(f"document.querySelector('{fig} img').naturalWidth") == 6
        assert page.evaluate(f"document.querySelector('{fig} .hl-media-label').textContent") == (
            "step 2"
        )
        last = page.evaluate(f"document.querySelector('{fig} img').getAttribute('src')")
        page.evaluate(
            f"(() => {{ const s = document.querySelector('{fig} input');"
            " s.value = '0'; s.dispatchEvent(new Event('input')); })()"
        )
        first = page.evaluate(f"document.querySelector('{fig} img').getAttribute('src')")
        assert (
            first != last
            and page.evaluate(f"document.querySelector('{fig} .hl-media-label').textContent")
            == "step 0"
        )
        page.wait_for(f"document.querySelector('{fig} img').complete", timeout=10)
        assert page.evaluate(f"document.querySelector('{fig} img').naturalWidth") == 6
        steps = page.evaluate(
            "Array.from(document.querySelectorAll('.hl-media-hist path'), p => p.dataset.step)"
        )
        assert steps == ["0", "1", "2"]
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('.hl-media-table tbody tr'),"
            " tr => Array.from(tr.cells, c => c.textContent))"
        )
        assert rows == [[HOSTILE, "2"], ["x", "3"]]  # the last step's table, as text
        page.evaluate(
            "(() => { const s = document.querySelector('.hl-media-table input');"
            " s.value = '0'; s.dispatchEvent(new Event('input')); })()"
        )
        assert page.evaluate(
            "Array.from(document.querySelectorAll('.hl-media-table tbody td'), c => c.textContent)"
        ) == ["first", "1"]
        assert page.evaluate("window.pwned === undefined")
        assert page.errors == [], page.errors
        page.close()
