#!/usr/bin/env python3
"""Generate gradlab's gRPC stubs from proto/gradlab/v1/gradlab.proto into python/gradlab/_proto/.

    python python/tools/gen_stubs.py           # (re)write the committed modules
    python python/tools/gen_stubs.py --check   # exit 1, naming each file, if they differ from the proto

The output depends on the grpcio-tools version, so this script refuses any version other than
the one pinned in python/pyproject.toml (`pip install ./python[test]` installs it). protoc writes
`from gradlab.v1 import gradlab_pb2`; the modules live in `gradlab._proto`, so that import is made
package-relative (and the messages' module name follows), which is the only change made to
protoc's output.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import pathlib
import re
import sys
import tempfile

PYTHON_DIR = pathlib.Path(__file__).resolve().parent.parent
ROOT = PYTHON_DIR.parent
PROTO_DIR = ROOT / "proto"
PROTO = PROTO_DIR / "gradlab" / "v1" / "gradlab.proto"
OUT = PYTHON_DIR / "gradlab" / "_proto"
FILES = ("gradlab_pb2.py", "gradlab_pb2.pyi", "gradlab_pb2_grpc.py")


def pinned_version() -> str:
    """The grpcio-tools version pinned in pyproject.toml's test extra."""
    text = (PYTHON_DIR / "pyproject.toml").read_text()
    m = re.search(r'"grpcio-tools==([^"]+)"', text)
    if not m:
        sys.exit('pyproject.toml pins no grpcio-tools version (expected "grpcio-tools==X.Y.Z")')
    return m.group(1)


def fix_imports(name: str, text: str) -> str:
    """protoc's absolute imports and module names, made package-relative."""
    text = text.replace("from gradlab.v1 import gradlab_pb2 as", "from . import gradlab_pb2 as")
    text = text.replace("'gradlab.v1.gradlab_pb2'", "'gradlab._proto.gradlab_pb2'")
    if "gradlab.v1 import" in text:
        raise SystemExit(f"{name}: an import of gradlab.v1 is left after fixing imports")
    return text


def generate(out: pathlib.Path) -> None:
    from grpc_tools import protoc

    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")
    for name in FILES:
        src = out / "gradlab" / "v1" / name
        (out / name).write_text(fix_imports(name, src.read_text()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = ap.parse_args()
    want = pinned_version()
    try:
        have = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        have = None
    if have != want:
        sys.exit(
            f"grpcio-tools {want} is needed (pinned in python/pyproject.toml; its output differs between "
            f"versions), found {have or 'none'}: pip install 'grpcio-tools=={want}'"
        )
    with tempfile.TemporaryDirectory(prefix="gradlab-stubs-") as tmp:
        fresh = pathlib.Path(tmp)
        generate(fresh)
        if not args.check:
            OUT.mkdir(parents=True, exist_ok=True)
            for name in FILES:
                (OUT / name).write_text((fresh / name).read_text())
            print(f"wrote {', '.join(FILES)} to {OUT.relative_to(ROOT)}")
            return 0
        stale = []
        for name in FILES:
            committed = OUT / name
            if not committed.exists() or committed.read_text() != (fresh / name).read_text():
                stale.append(committed.relative_to(ROOT))
        if stale:
            for path in stale:
                print(f"{path}: out of date with {PROTO.relative_to(ROOT)}", file=sys.stderr)
            print("regenerate with: python python/tools/gen_stubs.py", file=sys.stderr)
            return 1
        print(f"stubs match {PROTO.relative_to(ROOT)} ({', '.join(FILES)})")
        return 0


if __name__ == "__main__":
    sys.exit(main())
