"""User-facing errors: one clear message naming the file, field or line; the CLI exits 2."""

from __future__ import annotations

from pydantic import ValidationError


class CedarInputError(Exception):
    """Bad input: a scenario field, a data file row, a CLI argument.

    ``source`` names the file (or ``--set``/argument) and ``where`` the field path or line.
    """

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None):
        self.message = message
        self.source = source
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        head = ""
        if self.source:
            head = self.source
            if self.where:
                head += f": {self.where}"
            head += ": "
        elif self.where:
            head = f"{self.where}: "
        return head + self.message


class CedarRunError(Exception):
    """A run could not finish for a reason that is not the input's fault (e.g. a worker process
    was killed, typically for lack of memory). The CLI exits 1 with this message."""


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """Render a pydantic error as lines ``field.path: what is wrong`` (no URLs, no tracebacks)."""
    lines = []
    for e in err.errors(include_url=False):
        loc = _loc(tuple(e.get("loc", ())))
        if prefix:
            loc = f"{prefix}.{loc}" if loc != "(document)" else prefix
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        msg = msg.removeprefix("Value error, ")
        inp = e.get("input")
        shown = ""
        if e.get("type") not in ("missing",) and not isinstance(inp, (dict, list)):
            r = repr(inp)
            shown = f" (got {r if len(r) < 60 else r[:57] + '...'})"
        lines.append(f"{loc}: {msg}{shown}")
    return "; ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines)
