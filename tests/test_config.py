"""Scenario schema, `extends`, `--set` and semantic checks.

The field-by-field tests walk the schema itself, so a field added later is covered without
anyone remembering to write its test.
"""

from __future__ import annotations

import math
import typing
from pathlib import Path

import annotated_types as at
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from cedar_opt.config import Scenario, load_scenario, scenario_hash
from cedar_opt.config.loader import deep_merge
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import scenarios_dir

SMOKE = scenarios_dir() / "smoke.yaml"


def _write(tmp_path: Path, doc, name="s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return p


# ---------------------------------------------------------------- walking the schema


def _leaf_fields(model: type[BaseModel], prefix=""):
    """(dotted path, FieldInfo, annotation) of every leaf field, descending into sub-models."""
    for name, f in model.model_fields.items():
        ann = f.annotation
        path = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _leaf_fields(ann, path + ".")
        else:
            yield path, f, ann


def _sub_models(model: type[BaseModel], prefix=""):
    yield prefix.rstrip("."), model
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _sub_models(ann, f"{prefix}{name}.")


LEAVES = list(_leaf_fields(Scenario))


def _bad_values(f, ann):
    """Values that must be rejected for this field, derived from its declared constraints."""
    bad = []
    for m in f.metadata:
        if isinstance(m, at.Gt):
            bad.append(m.gt)
        if isinstance(m, at.Ge):
            bad.append(m.ge - 1 if isinstance(m.ge, int) else m.ge - 1e-3)
        if isinstance(m, at.Le):
            bad.append(m.le + 1)
        if isinstance(m, at.MinLen):
            bad.append([])
    origin = typing.get_origin(ann)
    if ann is bool:
        bad.append("sometimes")
    if origin is typing.Literal:
        bad.append("not-an-option")
    if ann in (int, float):
        bad.append("twelve")
    if ann is float:
        bad.append(float("nan")) if any(isinstance(m, (at.Gt, at.Ge, at.Le)) for m in f.metadata) else None
    if ann is str:
        bad.append({"a": 1})
    return bad


def _set_path(doc: dict, path: str, value) -> dict:
    keys = path.split(".")
    node = doc
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return doc


def _base_doc() -> dict:
    return Scenario().model_dump(mode="json")


@pytest.mark.parametrize("path,f,ann", LEAVES, ids=[p for p, _, _ in LEAVES])
def test_every_field_has_a_description(path, f, ann):
    assert f.description, f"{path} needs a docstring with its unit"


@pytest.mark.parametrize("path,f,ann", LEAVES, ids=[p for p, _, _ in LEAVES])
def test_every_field_rejects_bad_values_naming_the_field(path, f, ann):
    bad = _bad_values(f, ann)
    if not bad:
        pytest.skip(f"{path}: no declared constraint to violate")
    for value in bad:
        doc = _set_path(_base_doc(), path, value)
        with pytest.raises(Exception) as ei:
            Scenario.model_validate(doc)
        assert path in str(ei.value).replace("\n", " ") or path.split(".")[-1] in str(ei.value), (path, value, str(ei.value))


@pytest.mark.parametrize("prefix,model", list(_sub_models(Scenario)))
def test_unknown_field_rejected_at_every_level(tmp_path, prefix, model):
    doc = _base_doc()
    target = doc
    for k in [k for k in prefix.split(".") if k]:
        target = target[k]
    target["no_such_field"] = 1
    with pytest.raises(CedarInputError) as ei:
        load_scenario(_write(tmp_path, doc))
    where = f"{prefix}.no_such_field" if prefix else "no_such_field"
    assert where in str(ei.value) and "unknown field" in str(ei.value)


def test_defaults_are_valid_and_frozen():
    s = Scenario()
    with pytest.raises(Exception):
        s.seed = 3  # type: ignore[misc]
    assert s.controller.horizon_s >= 300


def test_tier_shares_must_sum_to_one(tmp_path):
    doc = _base_doc()
    doc["workload"]["tiers"]["LOW"]["share"] = 0.5
    with pytest.raises(CedarInputError, match="sum to 1"):
        load_scenario(_write(tmp_path, doc))


def test_missing_tier_rejected(tmp_path):
    doc = _base_doc()
    del doc["workload"]["tiers"]["LOW"]
    with pytest.raises(CedarInputError, match="HIGH, MEDIUM, LOW"):
        load_scenario(_write(tmp_path, doc))


# ---------------------------------------------------------------- semantic checks


def test_deadlines_must_be_ordered(tmp_path):
    with pytest.raises(CedarInputError, match="HIGH < MEDIUM < LOW") as ei:
        load_scenario(SMOKE, ["workload.tiers.MEDIUM.deadline_s=0.5"])
    assert ei.value.where == "workload.tiers"


@pytest.mark.parametrize(
    "override,where",
    [
        ("fleet.regions=[us-east-1, mars-1]", "fleet.regions[1]"),
        ("fleet.gpus=[A100, TPU9]", "fleet.gpus[1]"),
        ("fleet.models=[llama-3.1-8b, gpt-9]", "fleet.models[1]"),
        ("workload.tiers.HIGH.min_model=gpt-9", "workload.tiers.HIGH.min_model"),
        ("autoscaler.gpu=TPU9", "autoscaler.gpu"),
    ],
)
def test_catalogue_references_checked(override, where):
    with pytest.raises(CedarInputError) as ei:
        load_scenario(SMOKE, [override])
    assert where in str(ei.value)


def test_horizon_must_cover_longest_cold_start():
    with pytest.raises(CedarInputError, match="cold start"):
        load_scenario(SMOKE, ["controller.horizon=[{count: 6, length_s: 10}]"])


def test_origins_must_be_fleet_regions_and_sum_to_one():
    with pytest.raises(CedarInputError, match="origins"):
        load_scenario(SMOKE, ["workload.origins={us-east-1: 0.5, us-west-2: 0.2}"])


# ---------------------------------------------------------------- extends and --set


def test_extends_merges_and_child_wins(tmp_path):
    base = _write(tmp_path, {"name": "base", "seed": 3, "controller": {"weights": {"cost": 2.0, "carbon": 3.0}}}, "base.yaml")
    child = _write(tmp_path, {"extends": base.name, "name": "child", "controller": {"weights": {"carbon": 5.0}}}, "child.yaml")
    s = load_scenario(child)
    assert (s.name, s.seed, s.controller.weights.cost, s.controller.weights.carbon) == ("child", 3, 2.0, 5.0)


def test_extends_chain_and_cycle(tmp_path):
    _write(tmp_path, {"extends": "b.yaml", "seed": 1}, "a.yaml")
    _write(tmp_path, {"extends": "a.yaml"}, "b.yaml")
    with pytest.raises(CedarInputError, match="cycle"):
        load_scenario(tmp_path / "a.yaml")


def test_extends_missing_parent(tmp_path):
    p = _write(tmp_path, {"extends": "nope.yaml"})
    with pytest.raises(CedarInputError, match="does not exist") as ei:
        load_scenario(p)
    assert ei.value.where == "extends"


def test_bundled_scenarios_extend_paper():
    smoke = load_scenario(SMOKE)
    paper = load_scenario()
    assert smoke.fleet.regions == paper.fleet.regions and smoke.fleet.models == paper.fleet.models and smoke.duration_s < paper.duration_s
    day = load_scenario(scenarios_dir() / "day.yaml")
    assert day.duration_s == 86400


def test_set_is_typed_and_validated():
    s = load_scenario(SMOKE, ["controller.weights.carbon=2.5", "seed=11", "controller.carbon_aware=false", "fleet.gpus=[H100]"])
    assert s.controller.weights.carbon == 2.5 and s.seed == 11 and s.controller.carbon_aware is False and s.fleet.gpus == ["H100"]
    with pytest.raises(CedarInputError, match="seed"):
        load_scenario(SMOKE, ["seed=abc"])
    with pytest.raises(CedarInputError, match="FIELD.PATH=VALUE"):
        load_scenario(SMOKE, ["seed"])
    with pytest.raises(CedarInputError, match="unknown field"):
        load_scenario(SMOKE, ["controller.weights.carbn=1"])


def test_set_changes_one_field_of_a_defaulted_group():
    s = load_scenario(SMOKE, ["workload.tiers.HIGH.deadline_s=0.8"])
    assert s.workload.tiers["HIGH"].deadline_s == 0.8 and s.workload.tiers["LOW"].deadline_s == 30.0


def test_hash_changes_with_content_only():
    a = load_scenario(SMOKE)
    b = load_scenario(SMOKE)
    c = load_scenario(SMOKE, ["seed=99"])
    assert scenario_hash(a) == scenario_hash(b) != scenario_hash(c)


def test_bad_yaml_and_non_mapping(tmp_path):
    with pytest.raises(CedarInputError, match="line 3"):
        load_scenario(_write(tmp_path, "seed: 1\nname: [unclosed\n"))
    with pytest.raises(CedarInputError, match="mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))


def test_deep_merge_replaces_non_mappings():
    assert deep_merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "d": {"x": 1}}) == {"a": {"b": 1, "c": [2]}, "d": {"x": 1}}


# ---------------------------------------------------------------- hypothesis: invalid documents


def _numeric_constraints():
    out = []
    for path, f, ann in LEAVES:
        if ann in (int, float) and any(isinstance(m, (at.Gt, at.Ge, at.Le)) for m in f.metadata):
            out.append((path, f))
    return out


NUMERIC = _numeric_constraints()
JUNK = st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just(float("inf")), st.just(float("nan")))


@st.composite
def invalid_documents(draw):
    doc = _base_doc()
    kind = draw(st.sampled_from(["range", "junk", "unknown", "tier"]))
    if kind == "range":
        path, f = draw(st.sampled_from(NUMERIC))
        bad = []
        for m in f.metadata:
            if isinstance(m, at.Gt):
                bad.append(draw(st.floats(max_value=m.gt, allow_nan=False)))
            if isinstance(m, at.Ge):
                bad.append(draw(st.floats(max_value=m.ge, exclude_max=True, allow_nan=False, allow_infinity=True)))
            if isinstance(m, at.Le):
                bad.append(draw(st.floats(min_value=m.le, exclude_min=True, allow_nan=False)))
        value = draw(st.sampled_from(bad))
        if f.annotation is int and math.isfinite(value):
            value = math.floor(value) if any(isinstance(m, at.Ge) and value < m.ge for m in f.metadata) else math.ceil(value)
            if any(isinstance(m, at.Le) for m in f.metadata):
                value = max(value, next(m.le for m in f.metadata if isinstance(m, at.Le)) + 1) if value > 0 else value
        _set_path(doc, path, value)
        return doc, path
    if kind == "junk":
        path, f, ann = draw(st.sampled_from([l for l in LEAVES if l[2] in (int, float, bool)]))
        _set_path(doc, path, draw(JUNK))
        return doc, path
    if kind == "unknown":
        prefix, _ = draw(st.sampled_from(list(_sub_models(Scenario))))
        name = "x_" + draw(st.text(alphabet="abcdefgh", min_size=1, max_size=6))
        path = f"{prefix}.{name}" if prefix else name
        _set_path(doc, path, draw(st.integers()))
        return doc, path
    tier = draw(st.sampled_from(["HIGH", "MEDIUM", "LOW"]))
    doc["workload"]["tiers"][tier]["share"] = draw(st.floats(min_value=0.0, max_value=1.0).filter(lambda v: abs(v - doc["workload"]["tiers"][tier]["share"]) > 1e-3))
    return doc, "workload.tiers"


@given(invalid_documents())
def test_invalid_documents_rejected_cleanly(tmp_path_factory, case):
    doc, path = case
    p = tmp_path_factory.mktemp("h") / "s.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        load_scenario(p)
    except CedarInputError as e:
        msg = str(e)
        assert str(p) in msg
        assert path.split(".")[-1] in msg or path in msg, (path, msg)
        assert "Traceback" not in msg and "errors.pydantic.dev" not in msg
    else:  # pragma: no cover - the property is that this never happens
        pytest.fail(f"invalid document accepted: {path}")


def test_regression_infinite_duration_rejected(tmp_path):
    """Found by test_invalid_documents_rejected_cleanly: `duration_s: .inf` passed `gt=0`."""
    doc = _base_doc()
    doc["duration_s"] = float("inf")
    with pytest.raises(CedarInputError, match="duration_s"):
        load_scenario(_write(tmp_path, doc))
