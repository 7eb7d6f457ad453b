"""Small shared helpers of the data loaders: opening inputs and reporting bad rows."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from cedar_opt.errors import CedarInputError


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or a CedarInputError naming it when it is not a readable file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CedarInputError(f"{what} file not found", source=str(p))
    return p


def read_text(path: Path) -> str:
    """The file's text; ``.gz`` files are decompressed. Decoding errors name the file."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise CedarInputError(f"cannot read: {e}", source=str(path)) from None
    except UnicodeDecodeError as e:
        raise CedarInputError(f"not UTF-8 text (byte {e.start})", source=str(path)) from None


def read_csv(path: Path, **kw):
    """pandas.read_csv with parser errors turned into CedarInputError naming the file."""
    import pandas as pd

    try:
        return pd.read_csv(io.StringIO(read_text(path)), **kw)
    except CedarInputError:
        raise
    except pd.errors.EmptyDataError:
        raise CedarInputError("file is empty", source=str(path)) from None
    except (pd.errors.ParserError, ValueError) as e:
        raise CedarInputError(f"not a readable CSV: {str(e).splitlines()[0]}", source=str(path)) from None


def require_columns(columns, needed: list[str], path: Path) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise CedarInputError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, columns)) or 'none'}",
            source=str(path),
            where="header",
        )


def first_true(mask: np.ndarray) -> int | None:
    """Position of the first True in a boolean array, or None."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def row_error(path: Path, pos: int, message: str, *, header_lines: int = 1) -> CedarInputError:
    """An error for data row ``pos`` (0-based position); the message gives the file line too."""
    return CedarInputError(f"{message} (file line {pos + 1 + header_lines})", source=str(path), where=f"row {pos + 1}")
