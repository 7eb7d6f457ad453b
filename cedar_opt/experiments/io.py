"""Writing results safely: every file goes to a temporary name and is renamed into place, so a
crash or a bad input never leaves a half-written file, and nothing already there is lost before
its replacement is complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from cedar_opt.errors import CedarInputError


def prepare_out_dir(out: Path) -> Path:
    """Create ``out`` if needed and prove it is writable; a clear error (exit 2) otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CedarInputError("exists and is not a directory", source="--out", where=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".cedar-write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CedarInputError(f"output directory is not writable: {e.strerror or e}", source="--out", where=str(out)) from None
    return out


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_p = Path(tmp)
    try:
        write(tmp_p)
        os.replace(tmp_p, path)
    except BaseException:
        tmp_p.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
