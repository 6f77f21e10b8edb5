"""Model size, memory and step-time estimates: golden numbers worked out by hand, a real
torch MLP, and DeepSpeed's own ZeRO estimators called side by side."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from hpclab.errors import ConfigError
from hpclab.launch.estimate import (
    MemoryEstimate,
    ModelSize,
    find_estimator,
    format_bytes,
    memory_estimate,
    mlp_size,
    optimizer_kind,
    step_time_estimate,
)

# The example's default MLP: 16 features -> 64 -> 64 -> 1.
#   Linear(16, 64): 16*64 + 64 = 1088
#   Linear(64, 64): 64*64 + 64 = 4160
#   Linear(64, 1):  64*1  + 1  =   65
#   total                      = 5313
P = 5313
BATCH = 64
# Activations per sample: input 16 + 2 hidden layers x (pre + post ReLU) x 64 + output 1
#   = 16 + 256 + 1 = 273 values x 4 bytes = 1092 bytes; x 64 samples = 69888 bytes.
ACT_FP32 = 1092 * BATCH


def test_mlp_size_golden() -> None:
    size = mlp_size(hidden=64, depth=2, n_features=16)
    assert size.params == P
    assert size.activation_bytes_per_sample == 1092
    # 6 FLOPs per weight (multiply-adds, forward + 2x backward): 6 * (1024 + 4096 + 64)
    assert size.flops_per_sample == 6 * 5184 == 31104
    assert size.largest_layer_params == 4160


@pytest.mark.parametrize(
    ("hidden", "depth", "n_features", "n_out"),
    [(64, 2, 16, 1), (256, 3, 16, 1), (7, 1, 3, 5), (32, 0, 10, 2), (5, 4, 1, 1)],
)
def test_mlp_size_matches_a_real_torch_mlp(
    hidden: int, depth: int, n_features: int, n_out: int
) -> None:
    torch = pytest.importorskip("torch")
    layers: list[object] = []
    width = n_features
    for _ in range(depth):
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    layers.append(torch.nn.Linear(width, n_out))
    model = torch.nn.Sequential(*layers)
    size = mlp_size(hidden, depth, n_features, n_out)
    assert size.params == sum(p.numel() for p in model.parameters())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    assert size.largest_layer_params == largest


def test_mlp_size_rejects_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="hidden=0"):
        mlp_size(hidden=0, depth=2, n_features=16)
    with pytest.raises(ConfigError, match="negative"):
        ModelSize(params=-1, activation_bytes_per_sample=0)


def test_memory_adam_fp32() -> None:
    est = memory_estimate(mlp_size(64, 2, 16), batch_size=BATCH)
    # weights 4 B/param, gradients 4 B/param, Adam m and v 2 x 4 B/param
    assert est.weights == 4 * P == 21252
    assert est.grads == 4 * P
    assert est.optimizer_states == 8 * P == 42504
    assert est.master_weights == 0
    assert est.activations == ACT_FP32 == 69888
    assert est.total == 21252 + 21252 + 42504 + 69888 == 154896
    assert est.model_states == 16 * P


def test_memory_sgd_plain_and_momentum() -> None:
    size = mlp_size(64, 2, 16)
    plain = memory_estimate(size, batch_size=BATCH, optimizer="sgd")
    assert plain.optimizer_states == 0
    assert plain.total == 4 * P + 4 * P + ACT_FP32 == 112392
    momentum = memory_estimate(size, batch_size=BATCH, optimizer="sgd_momentum")
    assert momentum.optimizer_states == 4 * P  # one fp32 buffer
    assert momentum.total == 112392 + 21252 == 133644


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "bf16"])
def test_memory_mixed_precision_counts_fp32_master_weights(dtype: str) -> None:
    est = memory_estimate(mlp_size(64, 2, 16), batch_size=BATCH, dtype=dtype)
    assert est.weights == 2 * P == 10626  # half-precision weights
    assert est.master_weights == 4 * P == 21252  # fp32 master copy
    assert est.grads == 2 * P
    assert est.optimizer_states == 8 * P  # Adam states stay fp32
    assert est.activations == ACT_FP32 // 2 == 34944
    assert est.total == 10626 + 21252 + 10626 + 42504 + 34944 == 119952


def test_memory_scales_activations_with_batch_and_not_states() -> None:
    size = mlp_size(64, 2, 16)
    small = memory_estimate(size, batch_size=1)
    big = memory_estimate(size, batch_size=100)
    assert big.activations == 100 * small.activations == 109200
    assert big.model_states == small.model_states


def test_torch_engine_replicates_whatever_the_gpu_count() -> None:
    size = mlp_size(64, 2, 16)
    one = memory_estimate(size, batch_size=BATCH, engine={"name": "torch"})
    eight = memory_estimate(size, batch_size=BATCH, engine={"name": "torch"}, gpus=8, nodes=2)
    assert one == eight == memory_estimate(size, batch_size=BATCH)


def test_memory_rejects_unknown_settings() -> None:
    size = mlp_size(64, 2, 16)
    with pytest.raises(ConfigError, match="unknown dtype 'int3'; valid: float32"):
        memory_estimate(size, batch_size=1, dtype="int3")
    with pytest.raises(ConfigError, match="unknown optimizer 'lion'; valid: adam"):
        memory_estimate(size, batch_size=1, optimizer="lion")
    with pytest.raises(ConfigError, match="unknown engine.name 'jax'; valid: torch, deepspeed"):
        memory_estimate(size, batch_size=1, engine={"name": "jax"})
    with pytest.raises(ConfigError, match="zero_stage must be 0, 1, 2 or 3"):
        memory_estimate(size, batch_size=1, engine={"name": "deepspeed", "zero_stage": 4})
    with pytest.raises(ConfigError, match="must be >= 1"):
        memory_estimate(size, batch_size=0)


def test_optimizer_kind() -> None:
    assert optimizer_kind({"name": "adam", "lr": 1e-3}) == "adam"
    assert optimizer_kind({"name": "sgd", "momentum": 0.9}) == "sgd_momentum"
    assert optimizer_kind({"name": "sgd", "momentum": 0.0}) == "sgd"
    assert optimizer_kind({"name": "SGD"}) == "sgd"


def test_breakdown_lists_the_parts() -> None:
    est = memory_estimate(mlp_size(64, 2, 16), batch_size=BATCH, dtype="bf16")
    text = est.breakdown()
    assert text.splitlines()[0] == f"per device: {format_bytes(119952)} (hpclab)"
    for part in ("weights", "master weights (fp32)", "gradients", "optimizer states"):
        assert part in text
    assert "DeepSpeed" not in text  # no zero rows


def test_memory_estimate_total_is_computed() -> None:
    est = MemoryEstimate(weights=1, grads=2, optimizer_states=3, activations=4, extra=5)
    assert est.total == 15
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"


# --- DeepSpeed ZeRO -----------------------------------------------------------------


def _ds() -> tuple[object, object]:
    pytest.importorskip("deepspeed")
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # the test process only
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    return estimate_zero2_model_states_mem_needs, estimate_zero3_model_states_mem_needs


@pytest.mark.slow
def test_deepspeed_import_leaves_no_accelerator_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("deepspeed")
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    engine = {"name": "deepspeed", "zero_stage": 2}
    memory_estimate(mlp_size(64, 2, 16), batch_size=BATCH, engine=engine)
    # sbatch exports the environment: a leftover DS_ACCELERATOR=cpu would follow the
    # jobs to GPU nodes.
    assert "DS_ACCELERATOR" not in os.environ
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    memory_estimate(mlp_size(64, 2, 16), batch_size=BATCH, engine=engine)
    assert os.environ["DS_ACCELERATOR"] == "cpu"


@pytest.mark.slow
@pytest.mark.parametrize("offload", [False, True])
@pytest.mark.parametrize(("gpus", "nodes"), [(1, 1), (4, 1), (4, 2)])
def test_zero2_model_states_are_deepspeeds(offload: bool, gpus: int, nodes: int) -> None:
    zero2, _ = _ds()
    size = mlp_size(64, 2, 16)
    est = memory_estimate(
        size,
        batch_size=BATCH,
        dtype="float16",
        engine={"name": "deepspeed", "zero_stage": 2, "offload": offload},
        gpus=gpus,
        nodes=nodes,
    )
    cpu, gpu = zero2(  # type: ignore[operator]
        total_params=P, num_gpus_per_node=gpus, num_nodes=nodes, cpu_offload=offload
    )
    assert est.model_states == gpu
    assert est.host == cpu
    assert est.activations == ACT_FP32 // 2
    assert est.total == gpu + ACT_FP32 // 2
    assert "estimate_zero2_model_states_mem_needs" in est.breakdown()
    assert not est.notes  # fp16 + Adam is what DeepSpeed's estimate assumes


@pytest.mark.slow
def test_zero2_golden_and_smaller_than_stage0() -> None:
    size = mlp_size(64, 2, 16)
    kw = {"batch_size": BATCH, "dtype": "bf16", "gpus": 4}
    stage0 = memory_estimate(size, engine={"name": "deepspeed", "zero_stage": 0}, **kw)  # type: ignore[arg-type]
    stage2 = memory_estimate(size, engine={"name": "deepspeed", "zero_stage": 2}, **kw)  # type: ignore[arg-type]
    # Stage 0 replicates: 2 (bf16 weights) + 4 (master) + 2 (grads) + 8 (Adam) = 16 B/param
    assert stage0.model_states == 16 * P == 85008
    # DeepSpeed: 2 B/param of fp16 weights + 18 B/param split over 4 GPUs
    assert stage2.model_states == 2 * P + int(18 * P / 4) == 10626 + 23908 == 34534
    assert stage2.model_states < stage0.model_states
    # hpclab's split of it: weights 2P, grads 2P/4, master 4P/4, Adam 8P/4 (rounded up)
    assert (stage2.weights, stage2.grads, stage2.master_weights, stage2.optimizer_states) == (
        10626,
        2657,
        5313,
        10626,
    )
    assert stage2.extra == 34534 - (10626 + 2657 + 5313 + 10626) == 5312  # fp32 grad partition


@pytest.mark.slow
def test_zero1_keeps_full_gradients_beyond_deepspeeds_zero2_figure() -> None:
    zero2, _ = _ds()
    est = memory_estimate(
        mlp_size(64, 2, 16),
        batch_size=BATCH,
        dtype="bf16",
        engine={"name": "deepspeed", "zero_stage": 1},
        gpus=4,
    )
    _, ds_gpu = zero2(total_params=P, num_gpus_per_node=4, num_nodes=1, cpu_offload=False)  # type: ignore[operator]
    assert ds_gpu == 34534
    # Stage 1 partitions only optimizer states: weights 2P + full bf16 grads 2P + master
    # 4P/4 + Adam 8P/4 = 7P, more than DeepSpeed's zero2 figure (which partitions grads).
    assert est.model_states == 7 * P == 37191 > ds_gpu
    assert est.extra == 0
    assert est.notes and "using the larger" in est.notes[0]


@pytest.mark.slow
def test_fp32_under_deepspeed_uses_hpclabs_larger_split() -> None:
    est = memory_estimate(
        mlp_size(64, 2, 16),
        batch_size=BATCH,
        dtype="float32",
        engine={"name": "deepspeed", "zero_stage": 2},
        gpus=4,
    )
    # fp32 weights 4P + grads 4P/4 + Adam 8P/4, no master copy: 7P > DeepSpeed's 6.5P
    assert est.model_states == 4 * P + P + 2 * P == 37191


@pytest.mark.slow
@pytest.mark.parametrize(
    ("offload", "offload_params"), [(False, False), (True, True), (True, False)]
)
@pytest.mark.parametrize(("gpus", "nodes"), [(1, 1), (4, 1), (8, 2)])
def test_zero3_model_states_are_deepspeeds(
    offload: bool, offload_params: bool, gpus: int, nodes: int
) -> None:
    _, zero3 = _ds()
    size = mlp_size(256, 3, 16)
    est = memory_estimate(
        size,
        batch_size=BATCH,
        dtype="bf16",
        engine={
            "name": "deepspeed",
            "zero_stage": 3,
            "offload": offload,
            "offload_params": offload_params,
        },
        gpus=gpus,
        nodes=nodes,
    )
    cpu, gpu, largest_layer_bytes = zero3(  # type: ignore[operator]
        total_params=size.params,
        largest_layer_params=size.largest_layer_params,
        num_gpus_per_node=gpus,
        num_nodes=nodes,
        cpu_offload=offload,
        cpu_offload_params=offload_params,
        zero_init=False,
    )
    assert largest_layer_bytes == 4 * (256 * 256 + 256)
    assert est.model_states == gpu
    assert est.host == cpu
    assert "estimate_zero3_model_states_mem_needs" in est.source


@pytest.mark.slow
def test_zero_stages_shrink_per_gpu_memory() -> None:
    size = mlp_size(1024, 4, 256)
    per_stage = [
        memory_estimate(
            size, batch_size=8, dtype="bf16", engine={"name": "deepspeed", "zero_stage": s}, gpus=8
        ).model_states
        for s in range(4)
    ]
    assert per_stage[0] > per_stage[1] > per_stage[2] > per_stage[3]


# --- step time ----------------------------------------------------------------------


def test_step_time_from_six_times_params() -> None:
    size = ModelSize(params=1_000_000, activation_bytes_per_sample=0)
    # 6 * 1e6 params * 32 samples = 1.92e8 FLOPs at 100 TFLOPS * 0.5 = 5e13 FLOP/s
    assert step_time_estimate(size, 32, {"tflops": 100, "efficiency": 0.5}) == pytest.approx(
        1.92e8 / 5e13
    )
    # efficiency defaults to 0.4
    assert step_time_estimate(size, 32, {"tflops": 100}) == pytest.approx(1.92e8 / 4e13)


def test_step_time_uses_flops_per_sample_when_given() -> None:
    size = mlp_size(64, 2, 16)
    assert step_time_estimate(size, BATCH, {"tflops": 1.0}) == pytest.approx(
        31104 * 64 / (1e12 * 0.4)
    )


def test_step_time_needs_hardware() -> None:
    size = mlp_size(64, 2, 16)
    assert step_time_estimate(size, BATCH, None) is None
    assert step_time_estimate(size, BATCH, {}) is None
    assert step_time_estimate(size, BATCH, {"device_mem_gb": 80}) is None
    with pytest.raises(ConfigError, match="hardware.tflops"):
        step_time_estimate(size, BATCH, {"tflops": "fast"})
    with pytest.raises(ConfigError, match="efficiency in"):
        step_time_estimate(size, BATCH, {"tflops": 10, "efficiency": 2})


# --- the task hook ------------------------------------------------------------------


def _task_module(root: Path, name: str, body: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(body))


def test_find_estimator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    _task_module(
        tmp_path,
        "hpclab_test_task_with_hook",
        """
        from hpclab.launch.estimate import mlp_size

        def estimate_model(cfg):
            return mlp_size(cfg["model"]["hidden"], cfg["model"]["depth"], 16)

        def train(cfg, run):
            pass
        """,
    )
    _task_module(tmp_path, "hpclab_test_task_without_hook", "def train(cfg, run): pass\n")
    hook = find_estimator("hpclab_test_task_with_hook.train")
    assert hook is not None
    assert hook({"model": {"hidden": 64, "depth": 2}}).params == P
    assert find_estimator("hpclab_test_task_with_hook:train") is hook
    assert find_estimator("hpclab_test_task_without_hook.train") is None


def test_find_estimator_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="no importable module"):
        find_estimator("hpclab_test_no_such_module.train")
    # A module that exists but fails to import: the real error, not "no estimator".
    _task_module(tmp_path, "hpclab_test_task_broken", "import hpclab_test_missing_dep\n")
    with pytest.raises(ModuleNotFoundError, match="hpclab_test_missing_dep"):
        find_estimator("hpclab_test_task_broken.train")
    sys.modules.pop("hpclab_test_task_broken", None)
