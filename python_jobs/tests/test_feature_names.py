"""The dbt column macros are generated from the registry and name exactly the job's columns."""

from __future__ import annotations

import math

import jinja2
import numpy as np
import pytest
import yaml

from python_jobs import config, definitions
from python_jobs.features import registry, sql_macros
from python_jobs.features.registry import definition


class _Returned(Exception):
    """dbt's ``return()``: control flow that ends the macro with a value."""

    def __init__(self, value):
        super().__init__()
        self.value = value


def render_macro(name: str, dbt_vars: dict | None = None, text: str | None = None):
    """Call a macro of the generated file with plain Jinja: ``var()`` as dbt resolves it."""
    project = yaml.safe_load((config.REPO_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    values = {**project["vars"], **(dbt_vars or {})}

    def dbt_return(value):
        raise _Returned(value)

    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    env.globals.update({"var": lambda key, default=None: values.get(key, default), "return": dbt_return})
    source = sql_macros.MACRO_FILE.read_text(encoding="utf-8") if text is None else text
    module = env.from_string(source).module

    def call(macro: str):
        try:
            getattr(module, macro)()
        except _Returned as returned:
            return returned.value
        raise AssertionError(f"macro {macro} did not return()")

    return call(name)


def test_generated_file_is_up_to_date():
    assert sql_macros.MACRO_FILE.read_text(encoding="utf-8") == sql_macros.render(), (
        "macros/python_jobs/py_columns.sql is stale: run `python -m python_jobs generate-macros`"
    )
    assert sql_macros.MACRO_FILE.read_text(encoding="utf-8").splitlines()[1].strip().startswith("GENERATED")


@pytest.mark.parametrize(("kind", "macro"), [("hist", "py_hist_columns"), ("stat", "py_stat_columns")])
def test_macros_equal_registry(kind, macro):
    columns = registry.output_columns(kind)
    assert render_macro(macro) == columns
    assert len(set(columns)) == len(columns)
    assert all(len(col) <= 63 and col == col.lower() for col in columns)


def test_column_types_cover_every_feature_column():
    types = render_macro("py_column_types")
    assert list(types) == registry.output_columns("stat") + registry.output_columns("hist")
    assert set(types.values()) == {"double precision"}


def test_vars_change_the_job_columns_and_the_macros_together():
    overrides = "{windows: [5, 10], mp_window: 12}"
    defs = definitions.load(overrides)
    hist = registry.output_columns("hist", defs)
    assert "hist_y_roll_median_w5" in hist and "hist_y_roll_q75_w10" in hist and "hist_y_mp_left_m12" in hist
    assert not any(col.endswith("_w90") for col in hist)
    parsed = definitions.parse_vars(overrides)
    assert render_macro("py_hist_columns", parsed) == hist
    assert render_macro("py_stat_columns", parsed) == registry.output_columns("stat", defs)
    assert "stat_mp_m12_min" in registry.output_columns("stat", defs)


def test_templates_expand_ranges_sequences_and_scalars():
    params = {"windows": (3, 7), "m": 8, "nlags": 3, "stat": ("a", "b")}
    assert registry.expand("x_{stat}_w{windows}", params) == ["x_a_w3", "x_a_w7", "x_b_w3", "x_b_w7"]
    assert registry.expand("mp_m{m}_min", params) == ["mp_m8_min"]
    assert registry.expand("acf{1..nlags}", params) == ["acf1", "acf2", "acf3"]
    assert registry.expand("plain", params) == ["plain"]
    with pytest.raises(KeyError, match="undeclared"):
        registry.expand("x{nope}", params)


def _toy(y: np.ndarray, *, windows: tuple[int, ...], lag: int) -> dict[str, np.ndarray]:
    """Rolling mean of each window, shifted by ``lag`` rows (point in time)."""
    out = {}
    for w in windows:
        mean = np.full(len(y), math.nan)
        sums = np.convolve(y, np.ones(w), mode="valid") / w
        mean[w - 1 :] = sums
        out[f"hist_toy_mean_w{w}_lag{lag}"] = np.r_[np.full(lag, math.nan), mean[: len(y) - lag]]
    return out


def test_a_new_family_is_one_registration_and_its_columns_reach_the_macro(monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    registry.register(
        "toy",
        kind="hist",
        outputs=["hist_toy_mean_w{windows}_lag{lag}"],
        params={"windows": definition("windows"), "lag": 2},
    )(_toy)
    toy = registry.family("toy")
    assert toy.output_names() == [f"hist_toy_mean_w{w}_lag2" for w in definitions.load().windows]
    assert set(toy.compute(np.arange(100.0))) == set(toy.output_names())
    text = sql_macros.render()
    assert "{#- toy -#}" in text and "'hist_toy_mean_w' ~ v0 ~ '_lag2'" in text
    assert render_macro("py_hist_columns", text=text) == registry.output_columns("hist")
    assert render_macro("py_hist_columns", {"windows": [4]}, text=text)[-1] == "hist_toy_mean_w4_lag2"


def test_registering_an_output_over_an_undeclared_parameter_fails_at_import():
    with pytest.raises(ValueError, match="undeclared"):
        registry.register("broken", kind="stat", outputs=["stat_x_{k}"])(lambda y: {})


def test_every_family_module_registers_with_a_cpu_function():
    fams = registry.families()
    assert {fam.name for fam in fams} == {
        "rolling",
        "catch22",
        "entropy",
        "spectral",
        "matrix_profile",
        "matrix_profile_left",
        "autocorrelation",
        "stl",
        "tsfresh_subset",
        "anomaly",
    }
    for fam in fams:
        assert callable(fam.fn) and fam.output_names() and fam.reference


def test_column_order_does_not_depend_on_import_order(monkeypatch):
    expected = registry.output_columns("stat"), registry.output_columns("hist")
    # As if the modules had been imported (and registered) in reverse order.
    monkeypatch.setattr(registry, "_FAMILIES", dict(reversed(list(registry._FAMILIES.items()))))
    assert (registry.output_columns("stat"), registry.output_columns("hist")) == expected
    modules = [fam.fn.__module__ for fam in registry.families()]
    assert modules == sorted(modules, key=registry.FAMILY_MODULES.index)
