"""Where the repository's bundled files live (models/, scenarios/, data/)."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The checkout this package runs from (an editable install, as the README says)."""
    return Path(__file__).resolve().parents[1]


def scenarios_dir() -> Path:
    return repo_root() / "scenarios"


def default_scenario_path() -> Path:
    return scenarios_dir() / "paper.yaml"


def data_pack_dir() -> Path:
    """The bundled data pack (built by ``scripts/build_data_pack.py``)."""
    return repo_root() / "data"


def shared_data_dir() -> Path | None:
    """The raw public data beside the checkout (``../shared/data``), when it is there."""
    p = repo_root().parent / "shared" / "data"
    return p if p.is_dir() else None
