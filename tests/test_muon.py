"""Muon, zoo's built-in: the same step as torch.optim.Muon on matrices, the published update on convolution
filters, Newton–Schulz's singular values, its refusals, which class the builder picks, and its state dict."""

from __future__ import annotations

import io
import math

import pytest
import torch

from zoo_plugins.optimizers.muon import Muon, muon, orthogonalize

A, B, C = 3.4445, -4.7750, 2.0315  # the quintic's coefficients, as published


def grads(shape: tuple[int, ...], steps: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(steps)]


def run(optimizer: torch.optim.Optimizer, param: torch.Tensor, gradients: list[torch.Tensor]) -> None:
    for grad in gradients:
        param.grad = grad.to(param.dtype, copy=True)
        optimizer.step()


@pytest.mark.parametrize(("shape", "options"), [((32, 64), {}), ((48, 16), {"nesterov": False})])
def test_on_matrices_zoos_muon_takes_torchs_step(shape, options):
    start = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    settings = {"lr": 0.05, "momentum": 0.9, "ns_steps": 5, **options}
    zoo_muon = Muon([ours], **settings)
    torch_muon = torch.optim.Muon([theirs], weight_decay=0.0, eps=1e-7, adjust_lr_fn="original", **settings)
    gradients = grads(shape, 4)
    run(zoo_muon, ours, gradients)
    run(torch_muon, theirs, gradients)
    assert not torch.equal(ours, start)
    # the same iteration in bf16 on both sides: equal up to a bf16 rounding of a step
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3 * settings["lr"])


def published_ns(g: torch.Tensor, steps: int, dtype: torch.dtype, eps: float = 1e-7) -> torch.Tensor:
    """Newton–Schulz as airbench94_muon writes it: bf16, X/(‖X‖+eps), transposed when tall,
    X ← aX + (bA + cA²)X with A = XXᵀ."""
    x = g.to(dtype)
    x = x / (x.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = A * x + (B * gram + C * gram @ gram) @ x
    return x.T if tall else x


def published_step(
    p: torch.Tensor,
    buf: torch.Tensor,
    grad: torch.Tensor,
    lr: float,
    m: float,
    steps: int,
    dtype: torch.dtype,
) -> None:
    """airbench94_muon's Muon step on one conv weight (Nesterov, normalized), written from the published
    update."""
    buf.mul_(m).add_(grad)
    g = grad + m * buf
    p.mul_(math.sqrt(p.size(0)) / p.norm())
    update = published_ns(g.reshape(len(g), -1), steps, dtype).view(g.shape)
    p.add_(update.to(p.dtype), alpha=-lr)


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float64, 1e-7), (torch.bfloat16, 0.1)])
@pytest.mark.parametrize(
    ("shape", "options"),
    [((8, 4, 3, 3), {}), ((16, 1, 3, 3), {"adjust_lr": "none"})],  # wide, and tall (transposed)
)
def test_on_conv_filters_zoos_muon_takes_airbench94_muons_published_step(shape, options, dtype, atol):
    """zoo's momentum is an EMA, buf ← m·buf + (1−m)·g, and its Nesterov update (1−m)·g + m·buf;
    airbench's is a sum, buf ← m·buf + g, and g + m·buf. The two updates differ by the factor (1−m) only,
    which the Newton–Schulz normalization X/‖X‖ removes. In float64 the steps are the same to 1e-7 of a
    step; in bf16, as published, they agree up to rounding, which three iterations of slope 3.4 amplify:
    within 0.1 of one step's size (lr; measured 0.03), where leaving Nesterov out is off by more than 0.3.
    A wide filter matrix's learning-rate scale is 1 ("original"); a tall one is compared with
    adjust_lr="none", as airbench applies no scale."""
    start = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours, theirs = start.clone().requires_grad_(), start.clone()
    lr, m = 0.05, 0.6
    name = {torch.float64: "float64", torch.bfloat16: "bfloat16"}[dtype]
    settings = {"lr": lr, "momentum": m, "normalize": True, "ns_steps": 3, "ns_dtype": name, **options}
    gradients, buf = grads(shape, 5, seed=3), torch.zeros(shape, dtype=torch.float64)
    run(Muon([ours], nesterov=True, **settings), ours, gradients)
    for grad in gradients:
        published_step(theirs, buf, grad.double(), lr, m, steps=3, dtype=dtype)
    torch.testing.assert_close(ours.detach(), theirs, rtol=0, atol=atol * lr)
    plain = start.clone().requires_grad_()
    run(Muon([plain], nesterov=False, **settings), plain, gradients)
    assert float((plain.detach() - theirs).abs().max()) > 0.3 * lr


@pytest.mark.parametrize("shape", [(64, 128), (96, 24), (16, 3 * 9)])
def test_newton_schulz_brings_every_singular_value_near_1(shape):
    matrix = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    matrix[:, 0] *= 50  # a badly conditioned start: one direction dominates
    values = torch.linalg.svdvals(orthogonalize(matrix, steps=5).float())
    assert float(values.min()) >= 0.5 and float(values.max()) <= 1.5


def test_orthogonalize_keeps_the_singular_vectors():
    matrix = torch.randn(20, 30, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    out = orthogonalize(matrix, steps=10, dtype=torch.float64)
    middle = u.T @ out @ vh.T  # diagonal when the singular vectors are kept
    off_diagonal = middle - torch.diag(torch.diagonal(middle))
    assert float(off_diagonal.abs().max()) < 1e-6


def test_a_1d_tensor_is_refused_naming_what_to_do():
    with pytest.raises(ValueError, match=r"two or more dimensions.*shape \(5,\).*another optimizer"):
        Muon([torch.zeros(5, requires_grad=True)])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ns_dtype": "float16"}, "ns_dtype must be one of bfloat16, float32, float64"),
        ({"adjust_lr": "spectral"}, "adjust_lr must be one of"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"ns_steps": 0}, "ns_steps must be in 1–99"),
    ],
)
def test_bad_options_are_a_value_error_from_the_builder_and_the_class(options, message):
    weight = torch.zeros(4, 4, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        muon([weight], lr=0.02, **options)
    with pytest.raises(ValueError, match=message):
        Muon([weight], **options)


def test_the_builder_returns_torchs_muon_for_matrices_with_its_options_else_zoos():
    matrix, filters = torch.zeros(8, 4, requires_grad=True), torch.zeros(8, 4, 3, 3, requires_grad=True)
    assert type(muon([matrix], lr=0.02)) is torch.optim.Muon
    assert type(muon([{"params": [matrix], "lr": 0.1}], lr=0.02, nesterov=False)) is torch.optim.Muon
    assert type(muon([matrix, filters], lr=0.02)) is Muon
    assert type(muon([matrix], lr=0.02, normalize=True)) is Muon
    assert type(muon([matrix], lr=0.02, ns_dtype="float32")) is Muon
    assert type(muon([matrix], lr=0.02, adjust_lr="none")) is Muon


@pytest.mark.parametrize("shape", [(8, 4), (8, 4, 3, 3)])
def test_the_state_dict_loads_with_weights_only_and_the_next_step_is_the_same(shape):
    start = torch.randn(shape, generator=torch.Generator().manual_seed(6))
    param = start.clone().requires_grad_()
    optimizer = muon([param], lr=0.02, ns_dtype="bfloat16")
    gradients = grads(shape, 3, seed=7)
    run(optimizer, param, gradients[:2])
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    twin = param.detach().clone().requires_grad_()
    resumed = muon([twin], lr=0.02)
    resumed.load_state_dict(state)
    run(optimizer, param, gradients[2:])
    run(resumed, twin, gradients[2:])
    assert torch.equal(param, twin)
