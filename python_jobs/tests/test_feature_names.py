"""The SQL column macros name exactly the columns the Python feature families write."""

from __future__ import annotations

import jinja2
import pytest
import yaml

from python_jobs import config
from python_jobs.features import registry

MACROS = config.REPO_ROOT / "macros" / "python_jobs"


class _Returned(Exception):
    """dbt's ``return()``: control flow that ends the macro with a value."""

    def __init__(self, value):
        super().__init__()
        self.value = value


def render_macro(name: str, dbt_vars: dict | None = None) -> list[str]:
    """Call a dbt macro with plain Jinja: ``var()`` from dbt_project.yml, dbt's ``return()``."""
    project = yaml.safe_load((config.REPO_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    values = {**project["vars"], **(dbt_vars or {})}

    def dbt_return(value):
        raise _Returned(value)

    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    env.globals.update({"var": lambda key, default=None: values.get(key, default), "return": dbt_return})
    module = env.from_string((MACROS / f"{name}.sql").read_text(encoding="utf-8")).module
    try:
        getattr(module, name)()
    except _Returned as returned:
        return list(returned.value)
    raise AssertionError(f"macro {name} did not return()")


@pytest.mark.parametrize(("kind", "macro"), [("hist", "py_hist_columns"), ("stat", "py_stat_columns")])
def test_macros_equal_registry(kind, macro):
    columns = registry.output_columns(kind)
    assert render_macro(macro) == columns
    assert len(set(columns)) == len(columns)
    assert all(len(col) <= 63 and col == col.lower() for col in columns)


def test_names_follow_the_vars(monkeypatch):
    monkeypatch.setattr(config, "MP_WINDOW", 12)
    monkeypatch.setattr(config, "WINDOWS", (5, 10))
    assert render_macro("py_hist_columns", {"mp_window": 12, "windows": [5, 10]}) == registry.output_columns(
        "hist"
    )
    assert render_macro("py_stat_columns", {"mp_window": 12}) == registry.output_columns("stat")


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
        assert callable(fam.fn) and fam.outputs() and fam.reference


def test_column_order_does_not_depend_on_import_order(monkeypatch):
    expected = registry.output_columns("stat"), registry.output_columns("hist")
    # As if the modules had been imported (and registered) in reverse order.
    monkeypatch.setattr(registry, "_FAMILIES", dict(reversed(list(registry._FAMILIES.items()))))
    assert (registry.output_columns("stat"), registry.output_columns("hist")) == expected
    modules = [fam.fn.__module__ for fam in registry.families()]
    assert modules == sorted(modules, key=registry.FAMILY_MODULES.index)
