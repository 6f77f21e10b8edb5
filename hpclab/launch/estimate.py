"""Memory and step-time estimates for a training task, made on the login node before a
sweep queues.

A task describes its model through an optional hook in its own module::

    def estimate_model(cfg: Mapping[str, Any]) -> ModelSize: ...

(:func:`mlp_size` is the one the example MLP uses). From a :class:`ModelSize`,
:func:`memory_estimate` gives bytes per device for weights, gradients, optimizer states
and activations; under DeepSpeed ZeRO the model-state figure comes from DeepSpeed's own
estimators. :func:`step_time_estimate` turns FLOPs into seconds when the config says how
fast the hardware is. Estimates are meant to catch a request that cannot fit, not to
predict the allocator's peak to the byte.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpclab.errors import ConfigError

DTYPE_BYTES: dict[str, int] = {
    "float32": 4,
    "fp32": 4,
    "float": 4,
    "float64": 8,
    "fp64": 8,
    "double": 8,
    "float16": 2,
    "fp16": 2,
    "half": 2,
    "bfloat16": 2,
    "bf16": 2,
}
"""Bytes per value of each training dtype. A 2-byte dtype means mixed precision: the
optimizer keeps fp32 master weights and fp32 states."""

OPTIMIZER_STATES: dict[str, int] = {
    "adam": 2,
    "adamw": 2,
    "lamb": 2,
    "adagrad": 1,
    "rmsprop": 1,
    "sgd_momentum": 1,
    "sgd": 0,
}
"""Per-parameter state tensors each optimizer keeps (Adam: first and second moments)."""

ENGINES = ("torch", "deepspeed")
"""Values of ``engine.name``: plain PyTorch (DDP replicates everything) or DeepSpeed."""

EstimateModel = Callable[[Mapping[str, Any]], "ModelSize"]


@dataclass(frozen=True)
class ModelSize:
    """What a task's model costs, independent of batch size and hardware."""

    params: int
    """Trainable parameters."""
    activation_bytes_per_sample: int
    """Bytes of activations kept for backward per sample, counted at 4 bytes a value
    (2-byte dtypes halve it)."""
    flops_per_sample: float | None = None
    """Training FLOPs (forward + backward) per sample; None: 6 x params."""
    largest_layer_params: int | None = None
    """Parameters of the largest layer (ZeRO-3 gathers one whole layer); None: params."""

    def __post_init__(self) -> None:
        # A task's estimator is user code: reject nonsense here, not deep in arithmetic.
        if self.params < 0 or self.activation_bytes_per_sample < 0:
            raise ConfigError(f"estimate_model returned negative sizes: {self}")
        if self.flops_per_sample is not None and self.flops_per_sample < 0:
            raise ConfigError(f"estimate_model returned negative flops_per_sample: {self}")


def mlp_size(hidden: int, depth: int, n_features: int, n_out: int = 1) -> ModelSize:
    """Size of ``depth`` blocks of ``Linear(width, hidden) + ReLU`` then ``Linear(width,
    n_out)``, the example MLP (``hpclab.examples.train.make_model``)."""
    if min(hidden, n_features, n_out) < 1 or depth < 0:
        raise ConfigError(
            f"MLP needs hidden, n_features, n_out >= 1 and depth >= 0 "
            f"(got hidden={hidden}, depth={depth}, n_features={n_features}, n_out={n_out})"
        )
    widths = [n_features] + [hidden] * depth + [n_out]
    layers = [(w_in, w_out) for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)]
    layer_params = [w_in * w_out + w_out for w_in, w_out in layers]
    matmul_weights = sum(w_in * w_out for w_in, w_out in layers)
    # Kept for backward, per sample: the input, each hidden layer's pre- and post-ReLU
    # outputs, and the output (its gradient feeds the loss). A little generous: autograd
    # frees the pre-ReLU tensor, but it is live at the forward peak.
    values = n_features + 2 * hidden * depth + n_out
    return ModelSize(
        params=sum(layer_params),
        activation_bytes_per_sample=4 * values,
        # 2 FLOPs per multiply-add, forward once and backward twice (input and weight grads)
        flops_per_sample=float(6 * matmul_weights),
        largest_layer_params=max(layer_params),
    )


def find_estimator(task_target: str) -> EstimateModel | None:
    """The ``estimate_model`` of the module defining ``task_target`` (``pkg.mod.func`` as
    in Hydra's ``_target_``, or ``pkg.mod:func``); None when the module has none.

    Raises :class:`ConfigError` when no prefix of the target imports, and passes on the
    error when the module itself fails to import (a bug in it should not be hidden).
    """
    if ":" in task_target:
        candidates = [task_target.split(":", 1)[0]]
    else:
        parts = task_target.split(".")
        # The target itself may be a module; otherwise its longest importable prefix is.
        candidates = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
    for name in candidates:
        if not name:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # Only "this candidate (or a parent) does not exist" means try a shorter one.
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                continue
            raise
        hook = getattr(module, "estimate_model", None)
        return hook if callable(hook) else None
    raise ConfigError(f"task target {task_target!r}: no importable module in it")


def optimizer_kind(optim: Mapping[str, Any]) -> str:
    """The :data:`OPTIMIZER_STATES` key for an optimizer config: ``sgd`` with a non-zero
    ``momentum`` keeps a momentum buffer, so it is ``sgd_momentum``."""
    name = str(optim.get("name", "adam")).lower()
    if name == "sgd" and float(optim.get("momentum") or 0.0) != 0.0:
        return "sgd_momentum"
    return name


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units, as Slurm counts memory)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one device holds while training; ``total`` is the sum of the parts."""

    weights: int
    grads: int
    optimizer_states: int
    activations: int
    master_weights: int = 0
    """fp32 copy of the weights kept by mixed precision (on the device unless offloaded)."""
    extra: int = 0
    """What DeepSpeed's estimator counts beyond hpclab's split (fp32 gradient partition,
    the gathered ZeRO-3 layer)."""
    host: int = 0
    """Host memory per node the engine needs besides (DeepSpeed's CPU figure: offloaded
    states, model loading)."""
    source: str = "hpclab"
    notes: tuple[str, ...] = ()
    total: int = field(init=False)

    def __post_init__(self) -> None:
        # Computed, not passed: the total can never disagree with its parts.
        object.__setattr__(self, "total", self.model_states + self.activations)

    @property
    def model_states(self) -> int:
        """Everything but activations: weights, master weights, gradients, states, extra."""
        return self.weights + self.master_weights + self.grads + self.optimizer_states + self.extra

    def breakdown(self) -> str:
        """A few lines for humans: each part, the total, where the figure came from."""
        rows = [
            ("weights", self.weights),
            ("master weights (fp32)", self.master_weights),
            ("gradients", self.grads),
            ("optimizer states", self.optimizer_states),
            ("DeepSpeed buffers", self.extra),
            ("activations", self.activations),
        ]
        lines = [f"per device: {format_bytes(self.total)} ({self.source})"]
        lines += [f"  {name:<22}{format_bytes(value):>12}" for name, value in rows if value]
        if self.host:
            lines.append(f"host per node: {format_bytes(self.host)}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def memory_estimate(
    size: ModelSize,
    *,
    batch_size: int,
    dtype: str = "float32",
    optimizer: str = "adam",
    engine: Mapping[str, Any] | None = None,
    gpus: int = 1,
    nodes: int = 1,
) -> MemoryEstimate:
    """Memory per device for training ``size`` with a per-device micro-batch of
    ``batch_size`` on ``gpus`` devices per node times ``nodes``.

    Plain PyTorch (``engine`` None or ``{"name": "torch"}``) replicates weights, gradients
    and optimizer states on every device. ``{"name": "deepspeed", "zero_stage": s,
    "offload": bool}`` partitions them as ZeRO stage ``s`` does; for stages 1-3 the
    model-state total is the larger of hpclab's split and DeepSpeed's own estimator
    (which assumes fp16 + Adam and, for stage 1, treats gradients as partitioned).
    """
    if batch_size < 1 or gpus < 1 or nodes < 1:
        raise ConfigError(
            f"batch_size, gpus and nodes must be >= 1 (got {batch_size}, {gpus}, {nodes})"
        )
    width = _lookup(DTYPE_BYTES, dtype, "dtype")
    n_states = _lookup(OPTIMIZER_STATES, optimizer, "optimizer")
    mixed = width == 2
    state_width = max(width, 4)  # mixed precision keeps optimizer states in fp32
    p = size.params
    activations = math.ceil(size.activation_bytes_per_sample * batch_size * width / 4)
    name, stage, offload, offload_params, zero_init = _engine(engine)
    if name == "torch" or stage == 0:
        return MemoryEstimate(
            weights=width * p,
            master_weights=4 * p if mixed else 0,
            grads=width * p,
            optimizer_states=n_states * state_width * p,
            activations=activations,
            source="hpclab" if name == "torch" else "hpclab (DeepSpeed ZeRO stage 0)",
        )
    shards = gpus * nodes

    def shard(nbytes: int) -> int:
        return math.ceil(nbytes / shards)

    # What ZeRO keeps on each device: stage 1 partitions optimizer states (with the fp32
    # master weights), stage 2 also gradients, stage 3 also weights; offload moves the
    # partitioned optimizer side (and at stage 3 the weights) to host memory.
    if stage == 3:
        weights = 0 if offload_params else shard(width * p)
    else:
        weights = width * p
    grads = width * p if stage == 1 else (0 if offload else shard(width * p))
    master = 0 if offload or not mixed else shard(4 * p)
    states = 0 if offload else shard(n_states * state_width * p)
    host, gpu, source = _deepspeed_model_states(
        size, stage, gpus, nodes, offload, offload_params, zero_init
    )
    notes = []
    own = weights + grads + master + states
    if own > gpu:
        notes.append(
            f"hpclab's split ({format_bytes(own)}) exceeds DeepSpeed's estimate "
            f"({format_bytes(gpu)}), which assumes fp16 weights, Adam and partitioned "
            "gradients; using the larger"
        )
    return MemoryEstimate(
        weights=weights,
        master_weights=master,
        grads=grads,
        optimizer_states=states,
        extra=max(0, gpu - own),
        activations=activations,
        host=host,
        source=source,
        notes=tuple(notes),
    )


def step_time_estimate(
    size: ModelSize, batch_size: int, hardware: Mapping[str, Any] | None
) -> float | None:
    """Seconds per training step of ``batch_size`` samples on one device, from
    ``hardware = {"tflops": peak, "efficiency": 0.4}``; None when no peak is given."""
    if not hardware or hardware.get("tflops") is None:
        return None
    try:
        tflops = float(hardware["tflops"])
        efficiency = float(hardware.get("efficiency", 0.4))
    except (TypeError, ValueError):
        raise ConfigError(
            f"hardware.tflops and hardware.efficiency must be numbers: {hardware}"
        ) from None
    if not tflops > 0 or not 0 < efficiency <= 1:
        raise ConfigError(
            f"hardware.tflops must be > 0 and hardware.efficiency in (0, 1]: {dict(hardware)}"
        )
    flops = size.flops_per_sample if size.flops_per_sample is not None else 6.0 * size.params
    return flops * batch_size / (tflops * 1e12 * efficiency)


def _lookup(table: dict[str, int], key: str, what: str) -> int:
    try:
        return table[str(key).lower()]
    except KeyError:
        raise ConfigError(f"unknown {what} {key!r}; valid: {', '.join(table)}") from None


def _engine(engine: Mapping[str, Any] | None) -> tuple[str, int, bool, bool, bool]:
    """(name, zero stage, offload optimizer, offload params, zero.Init) from the config."""
    if not engine:
        return "torch", 0, False, False, False
    name = str(engine.get("name", "torch")).lower()
    if name not in ENGINES:
        raise ConfigError(f"unknown engine.name {name!r}; valid: {', '.join(ENGINES)}")
    if name == "torch":
        return name, 0, False, False, False
    try:
        stage = int(engine.get("zero_stage", 0))
    except (TypeError, ValueError):
        stage = -1
    if stage not in (0, 1, 2, 3):
        raise ConfigError(
            f"engine.zero_stage must be 0, 1, 2 or 3 (got {engine.get('zero_stage')!r})"
        )
    offload = bool(engine.get("offload", False))
    offload_params = bool(engine.get("offload_params", offload)) and offload and stage == 3
    # Without zero.Init every rank first builds the whole model on the host: the larger
    # host figure is the safe default.
    zero_init = bool(engine.get("zero_init", False))
    return name, stage, offload, offload_params, zero_init


def _deepspeed_model_states(
    size: ModelSize,
    stage: int,
    gpus: int,
    nodes: int,
    offload: bool,
    offload_params: bool,
    zero_init: bool,
) -> tuple[int, int, str]:
    """(host bytes per node, device bytes, source) from DeepSpeed's ZeRO estimators."""
    zero2, zero3 = _zero_estimators()
    if stage in (1, 2):
        cpu, gpu = zero2(
            total_params=size.params,
            num_gpus_per_node=gpus,
            num_nodes=nodes,
            cpu_offload=offload,
        )
        return int(cpu), int(gpu), f"DeepSpeed ZeRO-{stage}: estimate_zero2_model_states_mem_needs"
    largest = size.largest_layer_params if size.largest_layer_params is not None else size.params
    cpu, gpu, _largest_layer_bytes = zero3(
        total_params=size.params,
        largest_layer_params=largest,
        num_gpus_per_node=gpus,
        num_nodes=nodes,
        cpu_offload=offload,
        cpu_offload_params=offload_params,
        zero_init=zero_init,
    )
    return int(cpu), int(gpu), "DeepSpeed ZeRO-3: estimate_zero3_model_states_mem_needs"


def _zero_estimators() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """DeepSpeed's estimator functions, imported on first use (importing DeepSpeed takes
    seconds and picks an accelerator)."""
    # DeepSpeed chooses and caches an accelerator when imported. On a login node without
    # GPUs ask for its CPU accelerator (it would fall back to it anyway, with a warning),
    # but only for the import: a DS_ACCELERATOR left in os.environ would be exported by
    # sbatch to the jobs and pin GPU nodes to the CPU.
    forced = "DS_ACCELERATOR" not in os.environ and not _has_gpu()
    if forced:
        os.environ["DS_ACCELERATOR"] = "cpu"
    try:
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
        from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    except ImportError as e:
        raise ConfigError(
            f"engine.name=deepspeed needs DeepSpeed to estimate memory ({e}); "
            "install it with: pip install 'hpclab[train]'"
        ) from None
    finally:
        if forced:
            os.environ.pop("DS_ACCELERATOR", None)
    return estimate_zero2_model_states_mem_needs, estimate_zero3_model_states_mem_needs


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    # device_count() does not initialise CUDA, so it is safe on a login node.
    return bool(torch.cuda.device_count() > 0)
