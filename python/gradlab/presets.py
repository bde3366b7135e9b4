"""The sweep presets of ``gradlab sweep --preset`` (src/runner/sweep.rs), as keyword arguments.

The server takes a sweep as a base job and axes; presets are the CLI's, so the client carries
the same ones. ``tests/test_sweeps.py`` submits each through the CLI and through this module
and checks that the server stores the same sweep and the same jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidArgument

#: The post's nine activations, in its order.
POST_ACTIVATIONS = ("logistic", "tanh", "atan", "softsign", "logsig", "ramp", "softplus", "logmin", "semisigmoid")

_DEPTHS = ("1", "2", "3", "4", "6", "8", "12", "16")


@dataclass(frozen=True)
class Preset:
    """A named sweep: its base job (JobSpec keyword arguments) and its axes, first outermost."""

    name: str
    about: str
    base: dict[str, Any]
    axes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _digits_base(name: str, width: int, steps: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        activation="tanh",
        depth=1,
        width=width,
        init="lecun_normal",
        optimizer="sgd",
        lr=0.1,
        batch=32,
        steps=steps,
        eval_every=250,
        dataset="digits",
        test_fraction=0.25,
        standardize=True,
        seed=1,
        record_every=10,
        labels={"preset": name},
    )
    base.update(extra)
    return base


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "seed-claims",
            "the post's nine activations x depths 1-16 x lecun/xavier normal x lr 0.01/0.03/0.1 x 3 seeds "
            "on digits, width 32, 1500 SGD steps (1296 jobs)",
            _digits_base("seed-claims", 32, 1500),
            {
                "activation": POST_ACTIVATIONS,
                "depth": _DEPTHS,
                "init": ("lecun_normal", "xavier_normal"),
                "lr": ("0.01", "0.03", "0.1"),
                "seed": ("1", "2", "3"),
            },
        ),
        Preset(
            "seed-claims-mini",
            "seed-claims reduced to one seed and lr 0.03/0.1: nine activations x depths 1-16 x lecun/xavier "
            "normal, 1500 steps (288 jobs; what `gradlab demo` runs)",
            _digits_base("seed-claims-mini", 32, 1500),
            {
                "activation": POST_ACTIVATIONS,
                "depth": _DEPTHS,
                "init": ("lecun_normal", "xavier_normal"),
                "lr": ("0.03", "0.1"),
                "seed": ("1",),
            },
        ),
        Preset(
            "edge-of-chaos",
            "tanh with custom init sigma_w 0.5-3.0, sigma_b 0.05, depths 2-32, 2 seeds on digits, width 64 "
            "(80 jobs): trainability against the mean-field order/chaos boundary",
            _digits_base("edge-of-chaos", 64, 1000, init="custom", sigma_w=1.0, sigma_b=0.05, lr=0.01),
            {
                "sigma_w": ("0.5", "0.75", "1.0", "1.25", "1.5", "2.0", "2.5", "3.0"),
                "sigma_b": ("0.05",),
                "depth": ("2", "4", "8", "16", "32"),
                "seed": ("1", "2"),
            },
        ),
    )
}


def preset(name: str) -> Preset:
    """The preset of that name; InvalidArgument (field ``preset``) naming the known ones otherwise."""
    try:
        return PRESETS[name.strip()]
    except KeyError:
        raise InvalidArgument(f"preset: unknown preset {name!r}; known: {', '.join(PRESETS)}", field="preset") from None
