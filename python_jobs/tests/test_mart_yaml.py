"""The marts' YAML follows the dbt vars: generated, never stale, and in step with SQL and the job."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from python_jobs import config, definitions
from python_jobs.features import mart_yaml, registry
from python_jobs.realtime.layout import FeatureLayout
from python_jobs.tests.test_feature_names import render_macro

STAT_WINDOW_COLUMNS = (
    "hist_y_is_outlier_z_w{}",
    "hist_y_is_outlier_iqr_w{}",
    "hist_y_trend_slope_w{}",
    "hist_y_roll_autocorr1_w{}",
    "hist_y_co_corr_w{}",
    "hist_y_prize1_corr_w{}",
)


@pytest.fixture(autouse=True)
def _no_run_overrides(monkeypatch):
    monkeypatch.delenv(definitions.VARS_ENV, raising=False)


def test_generated_yaml_is_up_to_date():
    assert mart_yaml.stale_files() == [], "run `python -m python_jobs generate-macros`"
    for path in mart_yaml.template_files():
        assert mart_yaml.target(path).read_text(encoding="utf-8").startswith("# GENERATED")


def test_editing_a_var_without_regenerating_makes_the_yaml_stale(tmp_path, monkeypatch):
    project = yaml.safe_load(definitions.PROJECT_FILE.read_text(encoding="utf-8"))
    project["vars"]["windows"] = [5, 10, 30, 90]
    edited = tmp_path / "dbt_project.yml"
    edited.write_text(yaml.safe_dump(project), encoding="utf-8")
    monkeypatch.setattr(definitions, "PROJECT_FILE", edited)
    stale = {path.name for path in mart_yaml.stale_files()}
    assert "_marts__features_hist.yml" in stale
    # features_futr/stat and the prize correlation do not depend on the windows
    assert "_marts__features_futr_stat.yml" not in stale and "_intermediate__prizes.yml" not in stale


def test_project_yaml_matches_the_sql_definitions_by_hand():
    """The generated columns against names written from the vars of dbt_project.yml directly."""
    raw = yaml.safe_load(definitions.PROJECT_FILE.read_text(encoding="utf-8"))["vars"]
    names = mart_yaml.column_names("features_hist")
    assert [n for n in names if re.fullmatch(r"hist_y_lag\d+", n)] == [f"hist_y_lag{k}" for k in raw["lags"]]
    assert [n for n in names if n.startswith("hist_y_roll_mean_w")] == [
        f"hist_y_roll_mean_w{w}" for w in raw["windows"]
    ]
    assert all(t.format(raw["stat_window"]) in names for t in STAT_WINDOW_COLUMNS)
    futr = mart_yaml.column_names("features_futr")
    assert [n for n in futr if n.startswith("futr_p")] == [
        f"futr_p{p}_k{k}_{f}"
        for p in raw["fourier_periods"]
        for k in raw["fourier_orders"]
        for f in ("sin", "cos")
    ]
    assert f"stat_mp_m{raw['mp_window']}_min" in mart_yaml.column_names("features_stat")


def test_descriptions_follow_the_values():
    cols = {
        c["name"]: c["description"]
        for c in mart_yaml.columns("features_hist", definitions.load({"stat_window": 20}))
    }
    assert cols["hist_y_roll_autocorr1_w20"].startswith("Lag-1 autocorrelation inside the last 20 rows")
    assert "the 19 pairs" in cols["hist_y_roll_autocorr1_w20"]
    assert (
        cols["hist_y_roll_mean_w7"]
        == "Mean of y over the 7 rows ending at this row; NULL until 7 rows exist."
    )
    assert "pandas `rolling(20)`" in cols["hist_y_roll_q25_w20"]


def test_windows_var_changes_sql_job_and_docs_together():
    overrides = "{windows: [5, 10]}"
    defs = definitions.load(overrides)
    docs = mart_yaml.column_names("features_hist", defs)
    job = registry.output_columns("hist", defs)
    for name in (
        "hist_y_roll_mean_w5",
        "hist_y_roll_mean_w10",
        "hist_y_roll_median_w5",
        "hist_y_roll_median_w10",
    ):
        assert name in docs
    assert {"hist_y_roll_median_w5", "hist_y_roll_median_w10"} <= set(job)
    assert not any(name.endswith("_w3") for name in docs + job)
    # the job's columns (what dbt's py_hist_columns() gives with the same vars) are all documented
    assert render_macro("py_hist_columns", definitions.parse_vars(overrides)) == job
    assert set(job) <= set(docs)
    # the online engine names the same columns as the mart
    assert set(FeatureLayout(defs).hist_names) <= set(docs)


def test_stat_window_var_renames_every_single_window_column():
    defs = definitions.load({"stat_window": 20})
    docs = mart_yaml.column_names("features_hist", defs)
    for template in STAT_WINDOW_COLUMNS:
        assert template.format(20) in docs and template.format(30) not in docs
    # the IQR flag's quartiles over 20 rows come from the job, though 20 is not a window
    job = registry.output_columns("hist", defs)
    assert {"hist_y_roll_q25_w20", "hist_y_roll_q75_w20"} <= set(job)
    assert render_macro("py_hist_columns", {"stat_window": 20}) == job
    layout = FeatureLayout(defs)
    assert "hist_y_trend_slope_w20" in layout.names and layout.boolean_columns[0] == "hist_y_is_outlier_z_w20"


def test_sql_reads_the_stat_window_var():
    # features_hist reads its vars through features_hist_params(), as its hooks do
    readers = (
        "macros/marts/features_hist/features_hist_params.sql",
        "models/intermediate/int_hist__prize_correlation.sql",
    )
    for path in readers:
        text = (config.REPO_ROOT / path).read_text(encoding="utf-8")
        assert "var('stat_window'" in text or "hist_int_var('stat_window'" in text
    for path in (*readers, "models/marts/features_hist.sql"):
        text = (config.REPO_ROOT / path).read_text(encoding="utf-8")
        assert not re.search(r"_w30\b|= 30\b", text), path


def test_contract_condition_holds_only_for_the_generated_values():
    """The generated ``enforced`` Jinja, rendered as dbt renders it, for several sets of vars."""
    import jinja2

    project = definitions.project_vars()
    generated = {}
    for path in mart_yaml.template_files():
        for model in yaml.safe_load(mart_yaml.render(path)).get("models", []):
            enforced = model.get("config", {}).get("contract", {}).get("enforced")
            if enforced is not None:
                generated[model["name"]] = enforced
    assert set(generated) == {"features_hist", "features_futr", "features_stat", "features_stat_history"}

    def enforced(model: str, overrides: dict) -> bool:
        values = {**project, **overrides}
        env = jinja2.Environment()
        env.globals["var"] = lambda name, default=None: values.get(name, default)
        return env.from_string(generated[model]).render() == "True"

    assert all(enforced(model, {}) for model in generated)
    assert not enforced("features_hist", {"windows": [5, 10]})
    assert enforced("features_futr", {"windows": [5, 10]}) and enforced("features_stat", {"windows": [5, 10]})
    assert not enforced("features_hist", {"stat_window": 20})
    assert not enforced("features_futr", {"fourier_orders": [1]})
    assert not enforced("features_stat", {"mp_window": 12})
    # features_stat_history takes features_stat's columns (columns_from), so its vars too.
    assert not enforced("features_stat_history", {"mp_window": 12})
    assert enforced("features_stat_history", {"windows": [5, 10]})
    assert not any(enforced(model, {definitions.CONTRACT_VAR: False}) for model in generated)
    # the same vars passed again (as --vars does) keep it on
    assert enforced("features_hist", {"windows": list(project["windows"])})
    assert definitions.differ_from_project("{windows: [5, 10]}")
    assert not definitions.differ_from_project({"windows": project["windows"]})


def test_a_registry_column_without_template_is_still_documented(monkeypatch):
    defs = definitions.project_definitions()
    template = {"models": [{"name": "features_stat", "columns": [{"name": "loto", "data_type": "text"}]}]}
    cols = mart_yaml.expand(template, defs)["models"][0]["columns"]
    assert [c["name"] for c in cols[1:]] == registry.output_columns("stat", defs)
    assert all("Python job" in c["description"] and c["data_type"] == "double precision" for c in cols[1:])


def test_unknown_definition_in_a_template_is_refused():
    template = {"models": [{"name": "m", "columns": [{"name": "x{w}", "each": {"w": "no_such_var"}}]}]}
    with pytest.raises(mart_yaml.TemplateError, match="no_such_var"):
        mart_yaml.expand(template, definitions.project_definitions())


@pytest.mark.dbt
def test_a_build_with_other_windows_names_the_overridden_columns(pg_url, fresh_schema, monkeypatch, tmp_path):
    """dbt and the job with ``--vars '{windows: [5, 10]}'``: the model contract does not stop the run."""
    from psycopg import sql

    from python_jobs import db, dbt
    from python_jobs.ingest import ingest_file
    from python_jobs.job import run_job

    schema = fresh_schema("vars")
    overrides = "{windows: [5, 10]}"
    monkeypatch.setenv(definitions.VARS_ENV, overrides)
    # 120 real Bingo5 draws: enough rows for every window, small enough for seconds of dbt
    lines = (config.RAW_DATA_DIR / "bingo5.csv").read_text(encoding="utf-8-sig").splitlines()
    sample = tmp_path / "bingo5.csv"
    sample.write_text("\n".join(lines[:121]) + "\n", encoding="utf-8")
    ingest_file("bingo5", sample, url=pg_url)
    dbt.run(["seed", "--quiet"], url=pg_url)
    dbt.run(["run", "--quiet", "--select", "stg_lottery__draws", "stg_lottery__prizes"], url=pg_url)
    run_job(url=pg_url, device="cpu", families=["rolling"], progress=False, quiet=True)
    marts = ["models/staging/python_jobs", "models/intermediate", "features_hist"]
    dbt.run(["run", "--quiet", "--select", *marts], url=pg_url)

    with db.connect(pg_url) as conn:
        rows = conn.execute(
            "select column_name from information_schema.columns where table_schema = %s "
            "and table_name = 'features_hist' order by ordinal_position",
            (schema,),
        ).fetchall()
        count = conn.execute(sql.SQL("select count(*) from {}.features_hist").format(sql.Identifier(schema)))
        assert count.fetchone()[0] == 120 * 8
    built = [row[0] for row in rows]
    for name in (
        "hist_y_roll_mean_w5",
        "hist_y_roll_mean_w10",
        "hist_y_roll_median_w5",
        "hist_y_roll_median_w10",
    ):
        assert name in built
    assert not any(name.endswith("_w3") for name in built)
    manifest_path = Path(os.environ.get("DBT_TARGET_PATH", config.REPO_ROOT / "target")) / "manifest.json"
    # the docs of that run: the YAML generated for the same vars names exactly the built columns
    assert built == mart_yaml.column_names("features_hist", definitions.load())
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["nodes"]["model.loto_features.features_hist"]["config"]["contract"]["enforced"] is False

    # with the project's vars the model contract is enforced again
    monkeypatch.delenv(definitions.VARS_ENV)
    dbt.run(["parse", "--quiet"], url=pg_url)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["nodes"]["model.loto_features.features_hist"]["config"]["contract"]["enforced"] is True
