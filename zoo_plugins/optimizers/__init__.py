"""Built-in optimizers: names, options and metadata only; torch is imported when one is built.

An optimizer builder is ``builder(param_groups, *, lr, **options) -> torch.optim.Optimizer``, where
``param_groups`` is what torch's optimizers take (zoo passes dicts with ``params``, ``lr`` and
``weight_decay``, the run's parameter groups). ``options`` are the entry's keywords: those a spec sets
(``--optimizer muon:ns_steps=3``), and ``momentum`` and ``nesterov`` from the run (``--momentum``,
``--nesterov``) when the builder takes them. Metadata: ``options`` (name → description, shown by
``zoo info``) and ``matrices_only`` (the optimizer takes only parameters of two or more dimensions; zoo gives
the others to the optimizer named by ``others``, at the same learning rate and weight decay).
"""

from __future__ import annotations

from zoo_core import Registry, hookimpl

_MODULE = "zoo_plugins.optimizers"
_MOMENTUM = "momentum factor (default: the run's --momentum)"
_NESTEROV = "Nesterov momentum, true or false (default: the run's --nesterov)"
_BETAS = {
    "beta1": "decay of the running mean of gradients, default 0.9",
    "beta2": "decay of the running mean of squared gradients, default 0.999",
    "eps": "added to the denominator, default 1e-8",
}

# name, builder, summary, options
_OPTIMIZERS = [
    (
        "sgd",
        "torch_optim:sgd",
        "Stochastic gradient descent with momentum (torch.optim.SGD)",
        {"momentum": _MOMENTUM, "nesterov": _NESTEROV, "dampening": "dampening of momentum, default 0"},
    ),
    (
        "adamw",
        "torch_optim:adamw",
        "Adam with decoupled weight decay (Loshchilov & Hutter 2019; torch.optim.AdamW)",
        {**_BETAS, "amsgrad": "the AMSGrad variant, default false"},
    ),
    (
        "adam",
        "torch_optim:adam",
        "Adam (Kingma & Ba 2015; torch.optim.Adam), weight decay added to the gradient",
        {**_BETAS, "amsgrad": "the AMSGrad variant, default false"},
    ),
    (
        "rmsprop",
        "torch_optim:rmsprop",
        "RMSprop (torch.optim.RMSprop)",
        {
            "momentum": _MOMENTUM,
            "alpha": "smoothing constant, default 0.99",
            "eps": "added to the denominator, default 1e-8",
            "centered": "normalize by the gradient's estimated variance, default false",
        },
    ),
]
_MUON_OPTIONS = {
    "momentum": _MOMENTUM,
    "nesterov": _NESTEROV,
    "ns_steps": "Newton–Schulz iterations that orthogonalize the update, default 5",
    "ns_dtype": "dtype of those iterations: bfloat16 (default), float32 or float64",
    "normalize": "rescale each weight to norm sqrt(rows) before its step, as airbench94_muon does; a layer "
    "followed by a normalization does not see the scale, default false",
    "adjust_lr": "learning-rate scale per shape: original (sqrt(max(1, rows/cols)), the default), "
    "match_rms_adamw (0.2·sqrt(max(rows, cols)): AdamW's learning rate and weight decay fit), none",
    "eps": "added to the norm before the iterations, default 1e-7",
}


@hookimpl
def register_optimizers(registry: Registry) -> None:
    for name, builder, summary, options in _OPTIMIZERS:
        registry.register(name, f"{_MODULE}.{builder}", summary=summary, options=options, matrices_only=False)
    registry.register(
        "muon",
        f"{_MODULE}.muon:muon",
        summary="Muon (Jordan et al. 2024): momentum orthogonalized by Newton–Schulz, for ≥2-D weights",
        options=_MUON_OPTIONS,
        matrices_only=True,
        others="adamw",
    )
