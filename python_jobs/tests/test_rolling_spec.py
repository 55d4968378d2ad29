"""The rolling-statistics table is the one source: SQL macros, YAML, docs, kernel slots, rules.

The marts against the references and the online engine against the marts are checked in
test_features_hist.py and test_realtime_parity.py, which iterate the same table.
"""

from __future__ import annotations

import doctest

import jinja2
import numpy as np
import pandas as pd
import pytest

from python_jobs import apidoc, config, definitions
from python_jobs.features import hist_macros, mart_yaml, rolling_spec, sql_macros
from python_jobs.realtime import domain
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.layout import FeatureLayout
from python_jobs.tests.realtime_reference import bundled_draws
from python_jobs.tests.test_feature_names import render_macro

MACROS = config.REPO_ROOT / "macros" / "features"


@pytest.fixture(autouse=True)
def _no_run_overrides(monkeypatch):
    monkeypatch.delenv(definitions.VARS_ENV, raising=False)


def _generated_macros() -> str:
    """The generated hist macros with the hand-written ones they call."""
    helpers = [MACROS / "hist_int_var.sql", MACROS / "window_centered_power_sum.sql"]
    return "\n".join(path.read_text(encoding="utf-8") for path in [*helpers, hist_macros.MACRO_FILE])


@pytest.mark.parametrize("module", [definitions, rolling_spec, mart_yaml])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_a_window_of_one_row_is_refused_in_python_as_in_sql():
    with pytest.raises(definitions.DefinitionError, match="at least 2 rows"):
        definitions.load({"windows": [1, 5]})
    assert definitions.load({"windows": [2, 5]}).windows == (2, 5)
    # features_hist.sql refuses a window below the macro's value: the same constant.
    assert render_macro("hist_smallest_window", text=_generated_macros()) == definitions.SMALLEST_WINDOW


def test_every_generated_file_names_its_generator_on_its_first_line():
    generated = {
        sql_macros.MACRO_FILE: "python_jobs/features/sql_macros.py",
        hist_macros.MACRO_FILE: "python_jobs/features/hist_macros.py",
        apidoc.TARGET: "python_jobs/apidoc.py",
        **{
            mart_yaml.target(path): "python_jobs/features/mart_yaml.py" for path in mart_yaml.template_files()
        },
    }
    for path, generator in generated.items():
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert "GENERATED" in first and generator in first, (path, first)
    assert hist_macros.MACRO_FILE.read_text(encoding="utf-8") == hist_macros.render(), (
        "run `python -m python_jobs generate-macros`"
    )


def test_sql_macros_list_the_sql_statistics_with_their_expressions():
    text = _generated_macros()
    listed = render_macro("hist_window_stats", text=text)
    want = [
        {"stat": stat.stat, "prefix": stat.prefix, "min_window": stat.min_window}
        for stat in rolling_spec.computed_by("sql")
    ]
    assert listed == want
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    module = env.from_string(text).module
    for stat in rolling_spec.computed_by("sql"):
        expected = env.from_string(text + "@@" + stat.sql).render(w=30).split("@@")[1]
        assert str(module.hist_window_stat_sql(stat.stat, 30)).strip() == expected.strip()
    power = render_macro("hist_window_max_power", text=text)
    assert power == max(stat.power for stat in rolling_spec.computed_by("sql")) >= 4


def test_domain_columns_of_sql_and_engine_are_one_list():
    # hist_int_var as dbt resolves it (the plain-Jinja harness cannot nest a macro's return()).
    returned = []
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.globals.update(
        {"hist_int_var": lambda name, lint_value: {"freq_windows": [5, 20]}[name], "return": returned.append}
    )
    env.from_string(hist_macros.MACRO_FILE.read_text(encoding="utf-8")).module.hist_draw_domain_columns()
    sql_order = returned[-1]
    assert sql_order == list(domain.domain_columns((5, 20))[: -len(domain.GAP_COLUMNS)])
    assert "hist_y_freq_w20" in sql_order


def test_kernel_slots_and_layout_place_every_online_statistic_once():
    assert rolling_spec.KernelSlots._fields == tuple(
        stat.stat for stat in sorted(rolling_spec.online(), key=lambda stat: stat.kernel_slot)
    )
    layout = FeatureLayout(definitions.load())
    arrays = layout.kernel_arrays
    columns = arrays["window_columns"]
    assert columns.shape == (len(rolling_spec.online()), len(layout.state_windows))
    for stat, w, name in layout.window_names:
        assert columns[stat.kernel_slot, layout.state_windows.index(w)] == layout.names.index(name)
    assert (columns >= 0).sum() == len(layout.window_names)
    names = set(layout.names)
    assert "hist_y_roll_skew_w3" in names and "hist_y_roll_kurt_w3" not in names
    assert "hist_y_roll_kurt_w7" in names


def test_kurtosis_has_no_three_row_column_in_the_mart():
    names = mart_yaml.column_names("features_hist")
    skew = [name for name in names if name.startswith("hist_y_roll_skew_w")]
    kurt = [name for name in names if name.startswith("hist_y_roll_kurt_w")]
    windows = definitions.load().windows
    assert skew == [f"hist_y_roll_skew_w{w}" for w in windows]
    assert kurt == [f"hist_y_roll_kurt_w{w}" for w in windows if w >= 4]


@pytest.mark.parametrize("q", [0.25, 0.5, 0.75, 0.1])
def test_quantile_rule_is_pandas_linear_interpolation(q):
    rng = np.random.default_rng(11)
    for size in range(1, 12):
        values = np.sort(rng.integers(0, 50, size).astype(float))
        lower, upper, weight = rolling_spec.quantile_bounds(q, size)
        got = values[lower] + (values[upper] - values[lower]) * weight
        assert got == pytest.approx(pd.Series(values).quantile(q), rel=1e-12, abs=1e-12)


def _stream(overrides: dict) -> pd.DataFrame:
    draws = bundled_draws()
    series = draws[(draws.loto == "loto6") & (draws.unique_id == "N3")]
    engine = RealTimeFeatureEngine(overrides, history_features=False)
    return pd.DataFrame([engine.update("loto6:N3", ds, y) for ds, y in zip(series.ds, series.y, strict=True)])


def test_outlier_limits_are_dbt_vars_that_the_online_engine_reads():
    w = definitions.load().stat_window
    default = _stream({})
    loose = _stream({"outlier_z_threshold": 0.5, "outlier_iqr_multiplier": 0.1})
    zscore = default[f"hist_y_zscore_w{w}"].astype(float)
    z_flag = f"hist_y_is_outlier_z_w{w}"
    for frame, threshold in ((default, 3.0), (loose, 0.5)):
        known = zscore.notna()
        assert (frame.loc[known, z_flag].astype(bool) == (zscore[known].abs() > threshold)).all()
    iqr_flag = f"hist_y_is_outlier_iqr_w{w}"
    assert loose[iqr_flag].eq(True).sum() > default[iqr_flag].eq(True).sum()
    assert loose[z_flag].eq(True).sum() > default[z_flag].eq(True).sum()
