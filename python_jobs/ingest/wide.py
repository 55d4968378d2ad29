"""One draw per line (wide CSV) or per JSON object: its position rows and its prize rows.

A line is all or nothing: any bad field makes the whole line bad, with every reason found.
Checks that need the whole file (a draw twice, one draw number on two dates) run in the
database over the staged rows, so memory does not grow with the file.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from python_jobs.ingest.headers import WideLayout
from python_jobs.ingest.problems import Problem
from python_jobs.ingest.spec import LotoSpec
from python_jobs.ingest.values import (
    EMPTY_MARKS,
    INT32_MAX,
    INT64_MAX,
    bounded_int,
    date_problem,
    normalize,
    parse_date,
    parse_int,
)

NOBODY_WON = {"該当なし", "該当者なし", "なし"}
_SPLIT = re.compile(r"[\s,、・/]+")
_PARENTHESISED = re.compile(r"\(([^)]*)\)")

DrawRow = tuple[str, str, str, str, int | None, int | None, int]
PrizeRow = tuple[str, str, int, int | None, int | None, int]


@dataclass
class WideLine:
    """What one line gave: rows when good, reasons when bad."""

    draws: list[DrawRow] = field(default_factory=list)
    prizes: list[PrizeRow] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    shown_date: str | None = None


def _cell_numbers(text: object, *, digits: bool) -> list[str]:
    """The numbers of one cell: "07 10 12" -> ["07", "10", "12"]; Numbers digits "123" -> 1, 2, 3."""
    value = unicodedata.normalize("NFKC", str(text or "")).strip()
    parts = [part for part in _SPLIT.split(value) if part]
    if digits and len(parts) == 1 and parts[0].isdigit():
        return list(parts[0])
    return parts


def _positions(
    fields: dict, layout: WideLayout, spec: LotoSpec, reasons: list[str]
) -> list[tuple[str, object]]:
    positions: list[tuple[str, object]] = []
    in_cell_bonus: list[str] = []
    if layout.main_cell_key is not None:
        # "02 08 10 13 27 30 (39)": some sites print the bonus in parentheses in the same cell.
        text = unicodedata.normalize("NFKC", str(fields.get(layout.main_cell_key) or ""))
        for group in _PARENTHESISED.findall(text):
            in_cell_bonus += _cell_numbers(group, digits=False)
        cell = _cell_numbers(_PARENTHESISED.sub(" ", text), digits=spec.allow_repeats)
        if len(cell) != spec.main_count:
            shown = normalize(fields.get(layout.main_cell_key))[:60]
            reasons.append(
                f"winning number {shown!r} holds {len(cell)} numbers, {spec.loto} draws {spec.main_count}"
            )
        else:
            positions += [(f"N{i}", value) for i, value in enumerate(cell, start=1)]
    else:
        positions += [(uid, fields.get(key)) for uid, key in layout.main_keys]
    if layout.bonus_cell_key is not None:
        cell = _cell_numbers(fields.get(layout.bonus_cell_key), digits=False)
        if len(cell) > spec.bonus_count:
            reasons.append(f"bonus cell holds {len(cell)} numbers, {spec.loto} draws {spec.bonus_count}")
        else:
            positions += [(f"B{i}", value) for i, value in enumerate(cell, start=1)]
    else:
        positions += [(uid, fields.get(key)) for uid, key in layout.bonus_keys]
    if in_cell_bonus:
        if layout.bonus_cell_key is not None or layout.bonus_keys:
            reasons.append("bonus numbers both in parentheses and in a bonus column")
        elif len(in_cell_bonus) > spec.bonus_count:
            reasons.append(
                f"{len(in_cell_bonus)} bonus numbers in parentheses, {spec.loto} draws {spec.bonus_count}"
            )
        else:
            positions += [(f"B{i}", value) for i, value in enumerate(in_cell_bonus, start=1)]
    return positions


def _numbers(
    positions: list[tuple[str, object]], spec: LotoSpec, reasons: list[str]
) -> list[tuple[str, int]]:
    values: list[tuple[str, int]] = []
    for uid, text in positions:
        value = parse_int(text)
        if value is None:
            reasons.append(f"{uid}: unparseable number {normalize(text)[:40]!r}")
            continue
        low, high = spec.range_of(uid) or (spec.range_min, spec.range_max)
        if not low <= value <= high:
            reasons.append(f"{uid}: {value} is out of range {low}-{high} for {spec.loto}")
        values.append((uid, value))
    if not spec.allow_repeats:
        seen: dict[int, str] = {}
        for uid, value in values:
            if value in seen:
                reasons.append(f"number {value} repeats within the draw ({seen[value]} and {uid})")
            seen.setdefault(value, uid)
    return values


def _prize_value(text: object, *, label: str, reasons: list[str]) -> tuple[int | None, bool]:
    """(value, nobody_won) of a winners or prize cell; reasons gain why a cell is bad."""
    value = normalize(text)
    if value in NOBODY_WON:
        return None, True
    if value in EMPTY_MARKS:
        return None, False
    number = parse_int(value, money=True)
    if number is not None and number < 0:
        reasons.append(f"{label}: negative value {value[:40]!r}")
        return None, False
    parsed, reason = bounded_int(value, label=label, low=0, high=INT64_MAX, money=True)
    if reason:
        reasons.append(reason)
    return parsed, False


def _prizes(
    fields: dict, layout: WideLayout, spec: LotoSpec, reasons: list[str]
) -> list[tuple[int, int | None, int | None]]:
    rows = []
    for key, label in layout.unknown_tier_keys.items():
        if normalize(fields.get(key)) not in EMPTY_MARKS:
            reasons.append(
                f"column {key!r}: tier {label} does not exist for {spec.loto} (tiers {spec.tier_list()})"
            )
    for tier in sorted(set(layout.winners_keys) | set(layout.prize_keys)):
        winners = prize = None
        nobody = False
        if tier in layout.winners_keys:
            winners, nobody = _prize_value(
                fields.get(layout.winners_keys[tier]), label=f"tier {tier} winners", reasons=reasons
            )
        if tier in layout.prize_keys:
            prize, no_prize = _prize_value(
                fields.get(layout.prize_keys[tier]), label=f"tier {tier} prize", reasons=reasons
            )
            nobody = nobody or no_prize
        if nobody:
            winners, prize = 0, None
        if winners is not None or prize is not None:
            rows.append((tier, winners, prize))
    return rows


def wide_line(fields: dict, layout: WideLayout, spec: LotoSpec, line: int) -> WideLine:
    """The rows of one draw, or the reasons it is bad."""
    out = WideLine()
    date_text = normalize(fields.get(layout.date_key))
    ds = parse_date(date_text)
    out.shown_date = ds.isoformat() if ds else (date_text[:40] or None)
    if ds is None:
        out.reasons.append(f"unparseable date {date_text[:40]!r} (use 2017/4/5, 2017-04-05 or 2017年4月5日)")
    else:
        problem = date_problem(ds, spec.first_draw, spec.loto)
        if problem:
            out.reasons.append(problem)
    num = co = None
    if layout.num_key is not None:
        num_text = re.sub(r"^第|回$", "", normalize(fields.get(layout.num_key)))
        if num_text:
            num, reason = bounded_int(num_text, label="draw number", low=1, high=INT32_MAX)
            if reason:
                out.reasons.append(reason)
    if layout.co_key is not None:
        co_text = normalize(fields.get(layout.co_key))
        if co_text not in EMPTY_MARKS:
            co, reason = bounded_int(co_text, label="carry-over", low=0, high=INT64_MAX, money=True)
            if reason:
                out.reasons.append(reason)
    values = _numbers(_positions(fields, layout, spec, out.reasons), spec, out.reasons)
    prizes = _prizes(fields, layout, spec, out.reasons)
    if out.reasons or ds is None:
        return out
    day = ds.isoformat()
    out.draws = [(spec.loto, uid, day, str(value), num, co, line) for uid, value in values]
    out.prizes = [(spec.loto, day, tier, winners, prize, line) for tier, winners, prize in prizes]
    return out


def wide_problem(result: WideLine, line: int, raw: str) -> Problem:
    return Problem(line, result.shown_date, "; ".join(result.reasons), raw)
