"""``catalog list`` and ``catalog describe``: every column of every mart, every online column, each
with the definition, parameters, family and version its sources give; unknown names refused."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from python_jobs import catalog, definitions
from python_jobs.cli import main
from python_jobs.features import registry
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.indicators import INDICATOR_NAMES


@pytest.fixture(scope="module")
def listed() -> list[catalog.Feature]:
    return catalog.features()


def _yaml_columns() -> dict[str, list[str]]:
    """Each mart's documented columns, read straight from the YAML files."""
    out = {}
    for path in sorted(catalog.MARTS_DIR.glob("_*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            out[model["name"]] = [column["name"] for column in model["columns"]]
    return out


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["catalog", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_column_the_yaml_documents_is_listed_under_its_mart(listed):
    documented = _yaml_columns()
    assert {"features_hist", "features_futr", "features_stat"} <= set(documented)
    for mart, columns in documented.items():
        assert [f.name for f in listed if f.mart == mart] == columns, mart
        assert all(f.definition for f in listed if f.mart == mart), mart


def test_every_online_engine_column_is_listed_as_served_online(listed):
    engine_names = RealTimeFeatureEngine(history_features=False).layout.names
    online = {f.name for f in listed if f.served == catalog.ONLINE}
    assert online == set(engine_names)
    assert [f.name for f in listed if f.mart == catalog.ONLINE_MART] == list(INDICATOR_NAMES)
    # Each engine column of features_hist is served online, with its place in the vector.
    for feature in listed:
        if feature.name in engine_names:
            assert f"value {engine_names.index(feature.name)} of the vector" in feature.served_how


def test_python_job_columns_carry_their_registry_family_and_version(listed):
    defs = definitions.project_definitions()
    by_column = {(f.mart, f.name): f for f in listed}
    checked = 0
    for family in registry.families():
        mart = {"hist": "features_hist", "stat": "features_stat"}[family.kind]
        for name in family.output_names(defs):
            feature = by_column[(mart, name)]
            assert (feature.family, feature.version) == (family.name, family.version_id(defs)), name
            assert feature.computed_by == "Python job"
            checked += 1
    assert checked > 100


def test_describe_shows_the_definition_and_parameters_of_each_kind_of_column(capsys):
    code, out, _ = _run(capsys, "describe", "hist_y_lag3")
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert code == 0 and fields["family"].strip() == "hist_y_lag{k}"
    assert json.loads(fields["parameters"]) == {"k": {"value": 3, "var": "lags"}}
    assert "3 rows earlier" in fields["definition"] and fields["served"].strip() == "online"

    _, out, _ = _run(capsys, "describe", "hist_y_roll_median_w7")
    fields = dict(line.split(":", 1) for line in out.splitlines())
    windows = list(definitions.project_definitions().windows)
    assert fields["family"].strip() == "rolling" and fields["computed_by"].strip() == "Python job"
    assert json.loads(fields["parameters"]) == {"statistic": "median", "window": 7, "windows": windows}

    _, out, _ = _run(capsys, "describe", "sma_20")
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["mart"].strip() == "online" and json.loads(fields["parameters"]) == {"period": 20}
    assert "simple moving averages" in fields["definition"]


def test_describe_shows_a_column_of_every_mart_that_has_it(capsys):
    code, out, _ = _run(capsys, "describe", "loto")
    marts = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("mart:")]
    assert code == 0 and marts == sorted(m for m, columns in _yaml_columns().items() if "loto" in columns)
    assert "family:       grain" in out


def test_an_unknown_name_exits_2_with_one_line_naming_close_ones(capsys):
    code, out, err = _run(capsys, "describe", "hist_y_lagg3")
    assert code == 2 and not out
    assert err.count("\n") == 1 and "hist_y_lag3" in err and "Traceback" not in err


def test_list_prints_a_table_filters_by_mart_and_writes_json(capsys):
    code, out, _ = _run(capsys, "list", "--mart", "features_futr")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["name", "mart", "family", "served"]
    assert len(lines) - 3 == len(_yaml_columns()["features_futr"]) and lines[-1].endswith("features")
    code, out, _ = _run(capsys, "list", "--json", "--mart", "online")
    rows = json.loads(out)
    assert code == 0 and [row["name"] for row in rows] == list(INDICATOR_NAMES)
    assert set(rows[0]) == {f.name for f in catalog.dataclasses.fields(catalog.Feature)}
    code, out, err = _run(capsys, "list", "--mart", "features_nope")
    assert code == 2 and not out and err.count("\n") == 1


def test_a_mart_documented_later_is_listed_with_no_change_here(tmp_path, monkeypatch):
    for path in catalog.MARTS_DIR.glob("_*.yml"):
        shutil.copy(path, tmp_path / path.name)
    stat_columns = [
        c for c in yaml.safe_load((tmp_path / "_marts__features_futr_stat.yml").read_text())["models"]
    ]
    stat = next(model for model in stat_columns if model["name"] == "features_stat")
    history = {
        "name": "features_stat_history",
        "data_tests": [{"unique_combination": {"arguments": {"columns": ["loto", "unique_id", "as_of"]}}}],
        "columns": [{"name": "as_of", "data_type": "timestamp", "description": "Snapshot time."}]
        + [c for c in stat["columns"] if c["name"].startswith("stat_")],
    }
    (tmp_path / "_marts__features_stat_history.yml").write_text(
        yaml.safe_dump({"version": 2, "models": [history]})
    )
    monkeypatch.setattr(catalog, "MARTS_DIR", tmp_path)
    found = [f for f in catalog.features(parameters=False) if f.mart == "features_stat_history"]
    assert [f.name for f in found] == [c["name"] for c in history["columns"]]
    assert found[0].family == "grain"
    acf = next(f for f in found if f.name == "stat_acf_lag1")
    assert acf.family == "autocorrelation" and acf.served == catalog.NOT_SERVED
