"""Load a scenario: YAML file → ``extends`` chain → ``--set`` overrides → validation → checks.

Errors are :class:`cedar_opt.errors.CedarInputError` naming the file and the field path.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import ValidationError

from cedar_opt.config.schema import Scenario
from cedar_opt.errors import CedarInputError, format_validation_error
from cedar_opt.paths import default_scenario_path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CedarInputError("no such scenario file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CedarInputError(f"cannot read scenario file: {e}", source=str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise CedarInputError(f"not valid YAML: {problem}", source=str(path), where=where) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise CedarInputError(f"a scenario must be a mapping of fields, got {type(doc).__name__}", source=str(path))
    for k in doc:
        if not isinstance(k, str):
            raise CedarInputError(f"field names must be strings, got {k!r}", source=str(path))
    return doc


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base``: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_document(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The scenario document with its ``extends`` chain merged in (the file's own fields win)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise CedarInputError(f"extends forms a cycle: {chain}", source=str(path), where="extends")
    doc = _read_yaml(path)
    parent = doc.pop("extends", None)
    if parent is None:
        return doc
    if not isinstance(parent, str) or not parent:
        raise CedarInputError("extends must be a path to another scenario file", source=str(path), where="extends")
    ppath = (path.parent / parent) if not Path(parent).is_absolute() else Path(parent)
    if not ppath.exists():
        raise CedarInputError(f"extends names a file that does not exist: {parent}", source=str(path), where="extends")
    return deep_merge(resolve_document(ppath, (*_seen, path)), doc)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a","b","c"], value). The value is read as YAML (``3`` is an int,
    ``true`` a bool, ``[a, b]`` a list, ``null`` None), then validated by the schema."""
    if "=" not in text:
        raise CedarInputError("expected FIELD.PATH=VALUE", source="--set", where=text)
    key, _, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise CedarInputError("empty field name in the path", source="--set", where=text)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(doc: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise CedarInputError(
                    f"{'.'.join(parts[: i + 1])} is a value, not a group of fields", source="--set", where=text
                )
            node = nxt
        node[parts[-1]] = value
    return out


def load_scenario(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    check: bool = True,
) -> Scenario:
    """Read, merge, override, validate and check a scenario.

    ``path=None`` uses the bundled ``scenarios/paper.yaml``. With ``check`` the semantic checks of
    :mod:`cedar_opt.config.checks` (catalogue references, ordering of deadlines, horizon length)
    run as well.
    """
    p = Path(path) if path is not None else default_scenario_path()
    overrides = list(overrides)
    doc = resolve_document(p)
    if overrides:
        # Overrides land on the document completed with the schema's defaults, so that
        # `--set workload.tiers.HIGH.deadline_s=0.8` changes one field of a defaulted group.
        doc = apply_overrides(deep_merge(Scenario().model_dump(mode="json"), doc), overrides)
    try:
        scenario = Scenario.model_validate(doc)
    except ValidationError as e:
        src = str(p) + (" with --set " + " ".join(overrides) if overrides else "")
        raise CedarInputError(format_validation_error(e), source=src) from None
    if check:
        from cedar_opt.config.checks import run_checks

        run_checks(scenario, source=str(p))
    return scenario


def scenario_hash(scenario: Scenario) -> str:
    """Stable hash of the resolved scenario (sha256 of its canonical JSON), for provenance."""
    blob = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
