"""The server's sweep presets (``gradlab sweep --list-presets``), as keyword arguments.

The presets live on the server (``ListPresets``): the client keeps no copy of its own. Each
preset's base comes back with every field set; it is turned into the keyword arguments that
:meth:`gradlab.Client.submit` takes, so that overrides merge into it as the CLI's flags do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._proto import gradlab_pb2 as pb


@dataclass(frozen=True)
class Preset:
    """A named sweep: its base job (JobSpec keyword arguments) and its axes, first outermost."""

    name: str
    about: str
    base: dict[str, Any]
    axes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def jobs(self) -> int:
        """How many jobs the preset makes (the product of its axes' lengths)."""
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n


def spec_kwargs(spec: pb.JobSpec) -> dict[str, Any]:
    """A JobSpec message's set fields as keyword arguments. Hidden layers of one width are given
    as ``depth`` and ``width``, so that overriding one keeps the other (as the CLI's --depth)."""
    out: dict[str, Any] = {}
    for fd in pb.JobSpec.DESCRIPTOR.fields:
        name = fd.name
        if name == "labels":
            if spec.labels:
                out["labels"] = dict(spec.labels)
        elif name == "hidden":
            widths = list(spec.hidden)
            if widths and len(set(widths)) == 1:
                out["depth"], out["width"] = len(widths), widths[0]
            elif widths:
                out["hidden"] = widths
        elif name == "thresholds":
            if spec.HasField("thresholds"):
                t = spec.thresholds
                out["thresholds"] = {f.name: getattr(t, f.name) for f in t.DESCRIPTOR.fields if t.HasField(f.name)}
        elif fd.has_presence:
            if spec.HasField(name):
                out[name] = getattr(spec, name)
        elif getattr(spec, name):
            out[name] = getattr(spec, name)
    return out


def preset_from_pb(p: pb.Preset) -> Preset:
    return Preset(
        name=p.name,
        about=p.about,
        base=spec_kwargs(p.spec.base),
        axes={a.field: tuple(a.values) for a in p.spec.axes},
    )
