"""The feature catalog: every feature a user can read, where it lives, how it is made and served.

``loto-features catalog list`` and ``catalog describe NAME`` read it. Nothing in it is written
by hand; each field comes from where the code itself takes it:

- the columns, their types and definitions: the marts' YAML (``models/marts/_*.yml``,
  generated from the templates, the dbt vars and the registry), every model of that folder, so
  a new mart is listed as soon as its YAML documents it; a mart's grain is the column list of
  its ``unique_combination`` test;
- the family, parameters and version of a Python-job column: the feature families' registry
  (:mod:`python_jobs.features.registry`), through the job's family catalog
  (:mod:`python_jobs.job.catalog`), which knows every family's outputs and version without
  importing the families; a family's module is imported only when its parameters are asked for;
- the rolling statistics (``rolling_statistics``, one family per statistic of
  :mod:`python_jobs.features.rolling_spec`): statistic and window;
- the other SQL columns: their entry in the YAML templates (``each`` names the dbt var behind
  each placeholder, :mod:`python_jobs.features.mart_yaml`), whose name pattern is their family;
- how a column is served: online by the engine when :mod:`python_jobs.realtime.layout` puts it
  in the vector of ``realtime serve``; else materialized when ``materialize`` copies its mart
  (:data:`python_jobs.realtime.materialize.MARTS`); else not served;
- the columns only the engine computes (the market indicators of
  :mod:`python_jobs.realtime.indicators`), under the mart ``online``.

The version of a registry family is its :meth:`~python_jobs.features.registry.Family.version_id`;
an online-only column's is the feature-set version of the engine (its Redis keys carry it); any
other column's is a hash of its mart, family, definition, type and parameters (and SQL where the
rolling-statistics table holds it), so it changes when one of them does.

The sources are imported by the functions that read them, not with this module: the command
line imports it to build its parser, and they load numba, pandas and scikit-learn.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import itertools
import json
import re
import sys
from collections.abc import Collection, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import yaml

from python_jobs import config, definitions, settings

if TYPE_CHECKING:
    from python_jobs.features.registry import Family
    from python_jobs.features.rolling_spec import RollingStatistic
    from python_jobs.realtime.layout import FeatureLayout
    from python_jobs.realtime.store import ServingKeys

MARTS_DIR = config.REPO_ROOT / "models" / "marts"
#: The mart of the columns only the online engine computes.
ONLINE_MART = "online"
ONLINE, MATERIALIZED, NOT_SERVED = "online", "materialized", "not served"
EXIT_BAD_INPUT = 2


@dataclasses.dataclass(frozen=True)
class Feature:
    """One column of one mart (or of the online vector), as the catalog describes it.

    Attributes
    ----------
    name, mart, data_type
        The column, the model (or ``online``) that holds it, and its type there.
    family
        The registry family, ``rolling_statistics``, ``indicators``, ``grain`` for the keys,
        or for the other SQL columns the name pattern of their YAML entry.
    definition
        The description in the models' YAML (the indicators': their module's documentation).
    parameters
        The family's declared parameters and the column's own (statistic, window, the dbt
        var behind each placeholder); ``None`` where they were not looked up.
    version
        A hash that changes when the column's values may (see the module docstring).
    computed_by
        ``dbt SQL``, ``Python job``, ``online engine``.
    served, served_how
        ``online``, ``materialized`` or ``not served``, and where a reader finds it.
    """

    name: str
    mart: str
    data_type: str
    family: str
    definition: str
    parameters: Mapping[str, Any] | None
    version: str
    computed_by: str
    served: str
    served_how: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- the sources ----------------------------------------------------------------------------------


def mart_models() -> dict[str, dict[str, Any]]:
    """Every model documented by a YAML file of ``models/marts``: name -> its YAML entry."""
    models = {}
    for path in sorted(MARTS_DIR.glob("_*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            models[model["name"]] = model
    return models


def grain(model: Mapping[str, Any]) -> tuple[str, ...]:
    """The key columns of a mart: those of its ``unique_combination`` test."""
    for test in model.get("data_tests") or []:
        if isinstance(test, dict) and "unique_combination" in test:
            spec = test["unique_combination"]
            return tuple((spec.get("arguments") or spec).get("columns", ()))
    return ()


def _template_origins(defs: definitions.FeatureDefinitions) -> dict[tuple[str, str], tuple[str, dict]]:
    """``(model, column) -> (name pattern, parameters)`` of every template entry.

    The parameters of an ``each`` entry name the dbt var behind each placeholder and its value.
    """
    from python_jobs.features import mart_yaml

    origins: dict[tuple[str, str], tuple[str, dict]] = {}
    for path in mart_yaml.template_files():
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            for entry in model.get("columns") or []:
                if "rolling_statistics" in entry:
                    continue
                each = dict(entry.get("each") or {})
                members = entry.get("columns") or [entry]
                for combo in itertools.product(*(mart_yaml._values(defs, var) for var in each.values())):
                    values = dict(zip(each, combo, strict=True))
                    parameters = {slot: {"var": each[slot], "value": values[slot]} for slot in each}
                    for member in members:
                        name = mart_yaml._fill(member["name"], values)
                        origins[(model["name"], name)] = (member["name"], parameters)
    return origins


def _rolling_origins(defs: definitions.FeatureDefinitions) -> dict[str, tuple[RollingStatistic, int]]:
    from python_jobs.features import rolling_spec

    return {stat.column(w): (stat, w) for stat in rolling_spec.STATISTICS for w in stat.windows_of(defs)}


@cache
def _families(defs: definitions.FeatureDefinitions) -> tuple[Family, ...]:
    """The registry's families bound to ``defs``: from the job's catalog when it can say, else
    imported (and the catalog written, so the next call need not import them)."""
    from python_jobs.features import registry
    from python_jobs.job import catalog as family_catalog

    found = family_catalog.load(defs)
    if found is None:
        found = [family.bind(defs) for family in registry.families()]
        family_catalog.save(defs, found)
    return tuple(found)


def _family_of_column(defs: definitions.FeatureDefinitions) -> dict[str, Family]:
    return {name: family for family in _families(defs) for name in family.output_names(defs)}


def _family_parameters(family: Family, defs: definitions.FeatureDefinitions) -> dict[str, Any]:
    """The declared parameters of ``family``, importing its module alone if needed."""
    from python_jobs.features import registry
    from python_jobs.job import catalog as family_catalog

    registered = family_catalog.registered(family.fn.__module__, family.name)
    return registry._canonical(registered.resolved(defs))


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:16]


# -- serving --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Serving:
    """What the online engine computes, what ``materialize`` copies, and the keys of both."""

    layout: FeatureLayout
    keys: ServingKeys
    #: ``materialize``'s groups: group -> the mart whose ``{group}_*`` columns it copies.
    materialized_marts: Mapping[str, str]
    #: The engine's columns that ``realtime serve`` does not compute: history-wide, per draw.
    history_names: tuple[str, ...]
    domain_names: tuple[str, ...]

    def materialized(self, mart: str, name: str) -> bool:
        return any(
            mart == model and name.startswith(f"{group}_") for group, model in self.materialized_marts.items()
        )

    def how(self, mart: str, name: str) -> tuple[str, str]:
        """``(served, served_how)`` of one column."""
        from_marts = self.materialized(mart, name)
        copied = (
            f"materialized from {mart} by `materialize` into the hash "
            f"{self.keys.materialized('{loto}', '{unique_id}')} (field {name})"
        )
        if name in self.layout.names:
            how = (
                f"per event by the online engine (`realtime serve`): value {self.layout.names.index(name)} "
                f"of the vector in {self.keys.latest('{symbol}')}, decoded by {self.keys.prefix}:registry:"
                f"{self.keys.version}"
            )
            return ONLINE, how + ("; also " + copied if from_marts else "")
        extra = ""
        if name in self.history_names:
            extra = "; also computed per point by RealTimeFeatureEngine.update with history_features"
        elif name in self.domain_names:
            extra = "; also computed per draw by RealTimeFeatureEngine.update_draw"
        if from_marts:
            return MATERIALIZED, copied + extra
        return NOT_SERVED, f"read from {mart} in PostgreSQL" + extra


# -- the catalog ----------------------------------------------------------------------------------


def _mart_feature(
    mart: str, column: Mapping[str, Any], keys: tuple[str, ...], context: dict[str, Any], parameters: bool
) -> Feature:
    name, defs = column["name"], context["defs"]
    served, how = context["serving"].how(mart, name)
    fields = {
        "name": name,
        "mart": mart,
        "data_type": str(column.get("data_type", "")),
        "definition": " ".join(str(column.get("description", "")).split()),
    }
    if name in keys:
        return Feature(
            **fields, family="grain", parameters={}, version=_digest(fields), computed_by="dbt SQL",
            served=NOT_SERVED, served_how=f"a key of {mart} ({', '.join(keys)}): entities are found by it",
        )  # fmt: skip
    family = context["families"].get(name)
    if family is not None:
        params = _family_parameters(family, defs) if parameters else None
        if params is not None and name in context["rolling"]:
            stat, w = context["rolling"][name]
            params = {**params, "statistic": stat.stat, "window": w}
        return Feature(
            **fields, family=family.name, parameters=params, version=family.version_id(defs),
            computed_by="Python job", served=served, served_how=how,
        )  # fmt: skip
    if name in context["rolling"]:
        stat, w = context["rolling"][name]
        params = {"statistic": stat.stat, "window": w, "windows": {"var": stat.windows, "value": w}}
        payload = {**fields, "parameters": params, "sql": stat.sql}
        return Feature(
            **fields, family="rolling_statistics", parameters=params, version=_digest(payload),
            computed_by="dbt SQL", served=served, served_how=how,
        )  # fmt: skip
    pattern, params = context["templates"].get((mart, name), (name, {}))
    return Feature(
        **fields, family=pattern, parameters=params, version=_digest({**fields, "parameters": params}),
        computed_by="dbt SQL", served=served, served_how=how,
    )  # fmt: skip


def _indicator_parameters(name: str) -> dict[str, int]:
    from python_jobs.realtime import indicators

    if name.startswith("macd"):
        own = {"fast": indicators.MACD_FAST, "slow": indicators.MACD_SLOW}
        return own if name == "macd" else {**own, "signal": indicators.MACD_SIGNAL}
    return {"period": int(name.rsplit("_", 1)[1])}


def _indicator_definition(name: str) -> str:
    """The item of the indicators' module documentation that defines ``name``.

    Each item starts a line with the first name it defines (````sma_5``, ``sma_20``: ...``).
    """
    from python_jobs.realtime import indicators

    names = "|".join(re.escape(known) for known in indicators.INDICATOR_NAMES)
    for item in re.split(rf"\n(?=``(?:{names})\b)|\n\n", indicators.__doc__ or ""):
        if re.search(rf"``{re.escape(name)}\b", item):
            return " ".join(item.split())
    return ""


def _online_features(context: dict[str, Any]) -> list[Feature]:
    serving: _Serving = context["serving"]
    out = []
    for name in serving.layout.names:
        if name.startswith("hist_"):
            continue  # a column of features_hist, listed there
        served, how = serving.how(ONLINE_MART, name)
        out.append(
            Feature(
                name=name,
                mart=ONLINE_MART,
                data_type="double precision",
                family="indicators",
                definition=_indicator_definition(name),
                parameters=_indicator_parameters(name),
                version=serving.layout.version,
                computed_by="online engine",
                served=served,
                served_how=how,
            )
        )
    return out


def features(
    *, parameters: bool = True, names: Collection[str] | None = None, current: settings.Settings | None = None
) -> list[Feature]:
    """Every feature: each mart's columns in YAML order (marts by name), then the online-only ones.

    Parameters
    ----------
    parameters : bool
        Look up the registry families' parameters (imports their modules); without, a Python-job
        column's ``parameters`` is None and nothing is imported that the job's family catalog
        can stand in for.
    names : collection of str, optional
        Only the features of these names (in every mart that has them).
    current : Settings, optional
        Where the Redis key prefix is read (``redis.key_prefix``); default the settings in force.
    """
    from python_jobs.realtime import materialize
    from python_jobs.realtime.engine import RealTimeFeatureEngine
    from python_jobs.realtime.store import ServingKeys

    current = current or settings.get()
    defs = definitions.project_definitions()
    engine = RealTimeFeatureEngine(defs.as_vars(), history_features=False, capacity=1)
    online = engine.layout
    serving = _Serving(
        online,
        ServingKeys(current.redis.key_prefix, online.version),
        materialize.MARTS,
        engine.history_names,
        engine.domain_names(),
    )
    context = {
        "defs": defs,
        "serving": serving,
        "families": _family_of_column(defs),
        "rolling": _rolling_origins(defs),
        "templates": _template_origins(defs),
    }
    out = []
    for mart, model in sorted(mart_models().items()):
        keys = grain(model)
        for column in model.get("columns") or []:
            if names is None or column["name"] in names:
                out.append(_mart_feature(mart, column, keys, context, parameters))
    return out + [feature for feature in _online_features(context) if names is None or feature.name in names]


# -- the command line -----------------------------------------------------------------------------


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _cmd_list(args: argparse.Namespace) -> int:
    found = features(parameters=args.json)
    marts = sorted({feature.mart for feature in found})
    if args.mart and args.mart not in marts:
        return _refuse(f"no mart named {args.mart!r}; the marts are {', '.join(marts)}")
    chosen = [feature for feature in found if not args.mart or feature.mart == args.mart]
    if args.json:
        print(json.dumps([feature.as_dict() for feature in chosen], indent=1))
        return 0
    header = ("name", "mart", "family", "served")
    rows = [(f.name, f.mart, f.family, f.served) for f in chosen]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"{len(chosen)} features")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    listed = features(parameters=False)
    names = sorted({feature.name for feature in listed})
    if args.name not in names:
        close = difflib.get_close_matches(args.name, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "`catalog list` shows every name"
        return _refuse(f"no feature named {args.name!r}; {hint}")
    for i, feature in enumerate(features(names={args.name})):
        if i:
            print()
        for field, value in feature.as_dict().items():
            text = json.dumps(value, sort_keys=True) if isinstance(value, Mapping) else value
            print(f"{field + ':':<13} {text}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``catalog list`` and ``catalog describe NAME`` on the command line."""
    parser = sub.add_parser(
        "catalog", help="every feature of the marts and the online engine: list, describe"
    )
    commands = parser.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    p = commands.add_parser("list", help="name, mart, family and how each feature is served")
    p.add_argument("--mart", default=None, help="only this mart's columns (`online`: the online-only ones)")
    p.add_argument("--json", action="store_true", help="every field of every feature, as JSON")
    p.set_defaults(fn=_cmd_list)
    p = commands.add_parser("describe", help="every field of one feature: definition, parameters, version")
    p.add_argument("name", help="a column name, as `catalog list` shows it")
    p.set_defaults(fn=_cmd_describe)
