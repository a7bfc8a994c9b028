"""Achieved TFLOP/s and model FLOPs utilisation (MFU): the share of a GPU's dense peak that a model reaches.

MFU = (FLOPs per image × images per second) / peak FLOP/s, with the model's own FLOPs counted (a forward
pass; a training step counts three forwards: forward, and a backward twice as costly) — not the hardware's
own counters, so recomputation and overheads lower it, as they should.
"""

from __future__ import annotations

# Dense peak TFLOP/s (no 2:4 sparsity) per GPU and dtype, from NVIDIA's data sheets. More specific names
# come first: "H100 PCIe" must match before "H100". fp32 is the non-tensor-core rate; tf32 is what
# convolutions get in "fp32" when cuDNN may use TF32 (torch's default).
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM5 ("H100 80GB HBM3")
    ("H200 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),  # SXM4 and PCIe alike
)

TRAIN_FLOPS_FACTOR = 3  # forward + backward (≈ 2 × forward: gradients of inputs and of weights)


def step_flops(forward_flops: float, mode: str) -> float:
    """FLOPs of one image in ``mode``: one forward for inference, three forwards' worth for training."""
    return forward_flops * (TRAIN_FLOPS_FACTOR if mode == "train" else 1)


def achieved_tflops(forward_flops: float, img_per_s: float, mode: str) -> float:
    """TFLOP/s a run reached: FLOPs per image in ``mode`` × images per second / 10¹²."""
    return step_flops(forward_flops, mode) * img_per_s / 1e12


def peak_tflops(gpu_name: str | None, precision: str, *, tf32: bool = True) -> float | None:
    """The dense peak of a known GPU for ``precision`` (bf16, fp16, fp32), or None for anything else (a CPU,
    an unlisted GPU). ``fp32`` means the TF32 tensor-core peak where ``tf32`` is allowed."""
    if not gpu_name:
        return None
    name = gpu_name.upper()
    key = "tf32" if precision == "fp32" and tf32 else precision
    for pattern, peaks in PEAK_TFLOPS:
        if all(word in name for word in pattern.upper().split()):
            return peaks.get(key)
    return None


def mfu(tflops: float | None, peak: float | None) -> float | None:
    """Achieved TFLOP/s as a fraction of the peak; None where either is unknown."""
    if tflops is None or not peak:
        return None
    return tflops / peak
