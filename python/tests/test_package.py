"""The installed package: typed, versioned, its stubs importable as part of it."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import pickle

import gradlab
from gradlab._proto import gradlab_pb2 as pb


def test_typed_and_versioned() -> None:
    assert importlib.resources.files("gradlab").joinpath("py.typed").is_file()
    assert gradlab.__version__ == importlib.metadata.version("gradlab")
    assert all(hasattr(gradlab, name) for name in gradlab.__all__)


def test_stubs_live_in_the_package() -> None:
    assert pb.JobSpec.__module__ == "gradlab._proto.gradlab_pb2"
    spec = pb.JobSpec(depth=3, activation="tanh")
    assert pickle.loads(pickle.dumps(spec)) == spec
