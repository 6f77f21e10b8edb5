"""Native integrations with the real libraries: Lightning's ``HpclabLogger``, Hugging Face
``HpclabCallback``, TensorBoard text/hparams, and the warning for a run with no metrics.

Tiny models built from configs on synthetic tensors, on the CPU; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import hpclab_cli, python_script
from site_fixtures import run_page_text

import hpclab
from hpclab.catalog.connect import connect
from hpclab.catalog.indexer import Indexer
from hpclab.site.chromium import find_chromium
from hpclab.store import Store
from hpclab.store.atomic import read_json, read_yaml
from hpclab.tracking import loggers
from hpclab.tracking.metrics import read_metrics

pytest.importorskip("lightning")
pytest.importorskip("transformers")

NO_ENV = {"snapshot_env": False}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    loggers.reset()


def _lightning_module(lr: float = 0.1) -> Any:
    import lightning.pytorch as pl
    import torch

    class Tiny(pl.LightningModule):
        def __init__(self, lr: float, width: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(width, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train/loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return Tiny(lr)


def _loader(n: int = 16, batch: int = 4) -> Any:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=batch)


def _trainer(tmp_path: Path, logger: Any, **kwargs: Any) -> Any:
    import lightning.pytorch as pl

    return pl.Trainer(
        max_steps=5,
        accelerator="cpu",
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=str(tmp_path / "root"),
        **kwargs,
    )


def test_lightning_logger_records_metrics_hparams_checkpoints_and_steps(
    store_root: Path, tmp_path: Path
) -> None:
    from hpclab.integrations.lightning import HpclabLogger

    logger = HpclabLogger(project="p", store=store_root, name="tiny", settings=NO_ENV)
    run = logger.run
    _trainer(tmp_path, [logger]).fit(_lightning_module(lr=0.05), _loader())

    assert run.finished and run.status is not None and run.status.value == "completed"
    loss = read_metrics(run.paths.metrics_zarr)["train/loss"]
    assert loss.step.tolist() == [0, 1, 2, 3, 4], "one point per optimizer step"
    config = read_yaml(run.paths.config_yaml)
    assert config["hparams"] == {"lr": 0.05, "width": 4}
    record = json.loads(run.paths.run_json.read_text())
    assert record.get("total_steps") == 5, "trainer.max_steps is the run's step budget"

    # the default ModelCheckpoint wrote into the run's checkpoints/; it is referenced
    ckpts = sorted(run.paths.checkpoints_dir.glob("*.ckpt"))
    assert len(ckpts) == 1
    manifest = read_json(run.paths.artifacts_manifest)
    (entry,) = manifest
    assert entry["kind"] == "reference" and entry["path"] == f"checkpoints/{ckpts[0].name}"
    assert Path(entry["source"]) == ckpts[0].resolve()
    assert entry["size"] == ckpts[0].stat().st_size
    assert entry["sha256"] == hashlib.sha256(ckpts[0].read_bytes()).hexdigest()
    assert not run.paths.artifacts_dir.joinpath("checkpoints").exists(), "not copied"

    # and the catalog reads the same back
    with Indexer(Store(store_root)) as ix:
        ix.index()
    con = connect(store_root)
    assert con.execute(
        "SELECT n, last_step FROM metric_summary WHERE run_id = ? AND name = 'train/loss'",
        [run.id],
    ).fetchall() == [(5, 4)]
    assert (
        con.execute(
            "SELECT value FROM features WHERE run_id = ? AND path = 'hparams.lr'", [run.id]
        ).fetchone()
        is not None
    )
    assert con.execute("SELECT size FROM artifacts WHERE run_id = ?", [run.id]).fetchall() == [
        (entry["size"],)
    ]


def test_lightning_logger_records_into_the_current_run_and_leaves_it_open(
    store_root: Path, tmp_path: Path
) -> None:
    from omegaconf import OmegaConf

    from hpclab.integrations.lightning import HpclabLogger

    with hpclab.Run(project="p", store=store_root, config={"data": "x"}, settings=NO_ENV) as run:
        logger = HpclabLogger()
        assert logger.run is run
        logger.log_hyperparams(OmegaConf.create({"optim": {"lr": 0.1}}))
        _trainer(tmp_path, [logger], enable_checkpointing=False).fit(_lightning_module(), _loader())
        assert not run.finished, "the launcher, not the logger, ends a run it did not open"
    config = read_yaml(run.paths.config_yaml)
    assert config["data"] == "x", "the run's own config is kept"
    assert config["hparams"]["optim"] == {"lr": 0.1}
    assert config["hparams"]["lr"] == 0.1, "save_hyperparameters() merged beside it"


def test_update_config_merges_under_a_key_and_rejects_a_non_mapping(store_root: Path) -> None:
    from hpclab.errors import ConfigError

    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        run.update_config({"a": {"b": 1, "c": 2}}, key="hparams")
        run.update_config({"a": {"c": 3}, "d": [1, 2]}, key="hparams")
        with pytest.raises(ConfigError, match="mapping"):
            run.update_config([1, 2], key="hparams")
    assert read_yaml(run.paths.config_yaml) == {"hparams": {"a": {"b": 1, "c": 3}, "d": [1, 2]}}


class _Pairs:
    """A synthetic classification set: token ids and a label that depends on them."""

    def __init__(self, n: int = 16, length: int = 8, vocab: int = 50) -> None:
        import torch

        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, vocab, (n, length), generator=g)
        self.labels = (self.ids[:, 0] > vocab // 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


@pytest.mark.slow
def test_transformers_callback_records_logs_args_model_config_and_checkpoints(
    store_root: Path, tmp_path: Path
) -> None:
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from hpclab.integrations.transformers import HpclabCallback

    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
        )
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_steps=4,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    callback = HpclabCallback(project="p", store=store_root, settings=NO_ENV)
    Trainer(model=model, args=args, train_dataset=_Pairs(), callbacks=[callback]).train()
    run = callback.run

    assert run.finished and run.status is not None and run.status.value == "completed"
    metrics = read_metrics(run.paths.metrics_zarr)
    assert metrics["loss"].step.tolist() == [1, 2, 3, 4], "HF's names, at state.global_step"
    assert metrics["learning_rate"].step.tolist() == [1, 2, 3, 4]
    assert "train_runtime" in metrics
    config = read_yaml(run.paths.config_yaml)
    assert config["training_args"]["max_steps"] == 4
    assert config["training_args"]["learning_rate"] == 1e-3
    assert config["model_config"]["hidden_size"] == 16
    assert config["model_config"]["vocab_size"] == 50
    assert json.loads(run.paths.run_json.read_text()).get("total_steps") == 4

    ckpt = tmp_path / "out" / "checkpoint-4"
    files = sorted(p.relative_to(ckpt).as_posix() for p in ckpt.rglob("*") if p.is_file())
    refs = {e["path"]: e for e in read_json(run.paths.artifacts_manifest)}
    assert sorted(refs) == [f"checkpoints/checkpoint-4/{f}" for f in files]
    weights = refs["checkpoints/checkpoint-4/model.safetensors"]
    assert weights["kind"] == "reference"
    assert weights["size"] == (ckpt / "model.safetensors").stat().st_size


_CSV_ONLY = """
import sys
import lightning.pytorch as pl, torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset
import hpclab

class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
    def training_step(self, batch, i):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("loss", loss)
        return loss
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

run = hpclab.Run(project="p", store=sys.argv[1], settings={"snapshot_env": False})
x = torch.randn(8, 2)
pl.Trainer(max_steps=2, logger=CSVLogger(sys.argv[2]), enable_progress_bar=False,
           enable_checkpointing=False, enable_model_summary=False, log_every_n_steps=1,
           accelerator="cpu").fit(Tiny(), DataLoader(TensorDataset(x), batch_size=4))
run.finish()
print("RUN", run.id)
"""


@pytest.mark.slow
def test_a_completed_run_with_only_csvlogger_warns_once_naming_it(
    store_root: Path, tmp_path: Path
) -> None:
    """In a fresh process: Lightning imported after the run started (the import hook)."""
    proc = python_script(_CSV_ONLY, str(store_root), str(tmp_path / "csv"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = out.split("RUN", 1)[1].strip()
    warnings = [line for line in err.splitlines() if "completed with no metrics" in line]
    assert warnings == [
        f"hpclab: warning: run {run_id} completed with no metrics; loggers seen: "
        "lightning.CSVLogger (not captured: add hpclab.integrations.lightning.HpclabLogger)"
    ]
    assert list((tmp_path / "csv").rglob("metrics.csv")), "the CSV logger itself still ran"


def test_csvlogger_in_process_is_named_in_the_warning(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lightning.pytorch.loggers import CSVLogger

    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        _trainer(tmp_path, [CSVLogger(str(tmp_path / "csv"))], enable_checkpointing=False).fit(
            _lightning_module(), _loader()
        )
    err = capsys.readouterr().err
    assert (
        f"hpclab: warning: run {run.id} completed with no metrics; loggers seen: "
        "lightning.CSVLogger (not captured: add hpclab.integrations.lightning.HpclabLogger)"
    ) in err.splitlines()


def test_no_warning_for_a_run_with_metrics_and_a_plain_one_without(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        run.log({"x": 1.0}, step=0)
    assert "no metrics" not in capsys.readouterr().err
    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as empty:
        pass
    err = capsys.readouterr().err
    assert f"run {empty.id} completed with no metrics; loggers seen: none" in err
    with pytest.raises(RuntimeError), hpclab.Run(project="p", store=store_root, settings=NO_ENV):
        raise RuntimeError("boom")
    assert "no metrics" not in capsys.readouterr().err, "a failed run says why it failed"


def test_tensorboard_add_text_and_add_hparams_are_captured(
    store_root: Path, tmp_path: Path
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
        writer.add_text("samples", "the <b>cat</b> sat", 3)
        writer.add_text("notes", "no step")
        writer.add_hparams({"lr": 0.01, "opt": "adam"}, {"hparam/acc": 0.9}, global_step=7)
        writer.close()
    lines = [json.loads(line) for line in run.paths.text_jsonl.read_text().splitlines()]
    assert [(t["tag"], t["step"], t["text"]) for t in lines] == [
        ("samples", 3, "the <b>cat</b> sat"),
        ("notes", None, "no step"),
    ]
    assert read_yaml(run.paths.config_yaml) == {"hparams": {"lr": 0.01, "opt": "adam"}}
    acc = read_metrics(run.paths.metrics_zarr)["hparam/acc"]
    assert acc.step.tolist() == [7] and acc.value.tolist() == [pytest.approx(0.9)], (
        "logged once, though add_hparams also calls add_scalar itself"
    )
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*")), "events still written"


def test_runs_show_lists_text_and_artifact_references(store_root: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "weights dir" / "last.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"\x00" * 1000)
    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        run.log({"x": 1.0}, step=0)
        run.log_text("sample", "first line\nsecond line", step=2)
        run.log_artifact_reference(ckpt, name="checkpoints/last.ckpt", hash=False)
    # a line being appended right now (no newline yet) is not an entry yet
    with open(run.paths.text_jsonl, "a") as f:
        f.write('{"tag": "half')
    out = hpclab_cli(store_root, "runs", "show", run.id)
    assert out.returncode == 0, out.stderr
    assert f"  checkpoints/last.ckpt  1000 B  not hashed  -> {ckpt}" in out.stdout.splitlines()
    assert "text      1 entry" in out.stdout
    assert "  sample@2: first line ..." in out.stdout.splitlines()

    run.paths.text_jsonl.write_text("not json\n")
    bad = hpclab_cli(store_root, "runs", "show", run.id)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"hpclab: error: {run.paths.text_jsonl}: line 1: not JSON (Expecting value)"
    ]


def test_run_page_details_carry_the_text_log_redacted(store_root: Path) -> None:
    from secret_fixtures import fake_secrets

    from hpclab.site.data import load
    from hpclab.site.details import run_details

    token = fake_secrets("T")["github-token"]
    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        run.log({"x": 1.0}, step=0)
        run.log_text("prompt", "<b>hello</b>", step=1)
        run.log_text("env", f"token={token}")
    assert hpclab_cli(store_root, "index").returncode == 0
    text = run_details(load(Store(store_root)), ("p", run.id))["text"]
    assert [(t["tag"], t["step"]) for t in text] == [("prompt", 1), ("env", None)]
    assert text[0]["text"] == "<b>hello</b>", "escaped by the page, not mangled here"
    assert token not in text[1]["text"] and "redacted" in text[1]["text"]


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_run_page_shows_the_text_log_escaped(store_root: Path) -> None:
    with hpclab.Run(project="p", store=store_root, settings=NO_ENV) as run:
        run.log({"x": 1.0}, step=0)
        run.log_text("sample", "<img src=x onerror=alert(1)> the cat", step=3)
    text, images = run_page_text(Store(store_root), "p", run.id)
    assert "Text" in text and "<img src=x onerror=alert(1)> the cat" in text
    assert images == 0, "the text is shown as text, never as markup"


def test_lightning_total_steps_from_max_epochs(store_root: Path, tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from hpclab.integrations.lightning import HpclabLogger

    logger = HpclabLogger(project="p", store=store_root, settings=NO_ENV)
    pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=[logger],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
    ).fit(_lightning_module(), _loader(n=12, batch=4))
    record = json.loads(logger.run.paths.run_json.read_text())
    assert record.get("total_steps") == 6, "2 epochs of 3 batches"
    assert read_metrics(logger.run.paths.metrics_zarr)["train/loss"].step.tolist() == list(range(6))


def test_the_warning_names_each_logger_and_advises_only_for_uncaptured_ones() -> None:
    loggers.note("lightning.TensorBoardLogger")
    loggers.note("lightning.CSVLogger")
    loggers.note("transformers.WandbCallback")
    loggers.note("lightning.CSVLogger")  # a second trainer: named once
    assert loggers.no_metrics_warning("R1") == (
        "run R1 completed with no metrics; loggers seen: lightning.TensorBoardLogger, "
        "lightning.CSVLogger (not captured: add hpclab.integrations.lightning.HpclabLogger), "
        "transformers.WandbCallback (not captured: add "
        "hpclab.integrations.transformers.HpclabCallback)"
    )


def test_lightning_fit_then_validate_records_into_the_same_run(
    store_root: Path, tmp_path: Path
) -> None:
    import torch

    from hpclab.integrations.lightning import HpclabLogger

    class WithValidation(type(_lightning_module())):  # type: ignore[misc]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    module = WithValidation(0.1)
    logger = HpclabLogger(project="p", store=store_root, settings=NO_ENV)
    trainer = _trainer(tmp_path, [logger], enable_checkpointing=False)
    trainer.fit(module, _loader())
    first = logger.run
    assert first.finished, "fit's end ends the run the logger opened"
    trainer.validate(module, _loader())
    assert logger.run.id == first.id and logger.run.finished
    record = Store(store_root).read_record(logger.run.paths)
    assert record.status.value == "completed"
    metrics = read_metrics(logger.run.paths.metrics_zarr)
    assert "val/loss" in metrics and len(metrics["train/loss"]) == 5


def test_lightning_logger_on_a_rank_that_does_not_record(store_root: Path) -> None:
    from hpclab.integrations.lightning import HpclabLogger

    quiet = hpclab.Run(project="p", store=store_root, rank=1, settings=NO_ENV)
    logger = HpclabLogger(run=quiet)
    assert logger.save_dir is None and logger.log_dir is None
    logger.log_hyperparams({"lr": 0.1})  # rank 1 of the run: nothing written, no error
    assert not list(store_root.glob("p/runs/*/config.yaml"))
