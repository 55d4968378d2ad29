"""Reading results files into long-format records, with every problem named by line.

Layouts read:

* JSON: a list of objects keyed like the Japanese CSV headers (``loto6.json`` style);
* wide CSV: one draw per line, Japanese headers (抽選日/抽せん日/日付, 開催回, 数字1..数字N or
  第N数字, ボーナス数字 or 数字B1.., キャリーオーバー, or 当せん番号 for Numbers), full-width
  digits allowed, UTF-8 with or without BOM or CP932;
* long CSV: ``loto, unique_id, ds, y[, num, co]``.

Nothing here touches the database: :func:`parse_file` returns records and problems, and the
loader decides what to do with them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from python_jobs.ingest.spec import LotoSpec, get_spec, load_specs

LONG_REQUIRED = ("unique_id", "ds", "y")
LONG_OPTIONAL = ("loto", "num", "co")

DATE_HEADERS = {"抽選日", "抽せん日", "抽籤日", "日付", "開催日", "date", "ds", "draw_date"}
NUM_HEADERS = {"開催回", "回号", "回別", "回", "抽選回", "draw", "num", "draw_number"}
CARRY_HEADERS = {"キャリーオーバー", "キャリーオーバー(円)", "キャリーオーバー額", "carryover", "co"}
DIGITS_HEADERS = {"当せん番号", "当選番号", "抽せん数字", "抽選数字"}
MAIN_PATTERNS = (
    re.compile(r"^数字(\d+)$"),
    re.compile(r"^第(\d+)数字$"),
    re.compile(r"^本数字(\d+)$"),
    re.compile(r"^n(\d+)$"),
)
BONUS_PATTERNS = (
    re.compile(r"^(?:ボーナス数字|ボーナス|bonus数字|bonus|b数字)\(?(\d*)\)?$"),
    re.compile(r"^第(\d+)ボーナス数字$"),
    re.compile(r"^数字b(\d+)$"),
    re.compile(r"^b(\d+)$"),
)
DATE_RE = re.compile(
    r"^(\d{4})\s*[/\-.年]\s*(\d{1,2})\s*[/\-.月]\s*(\d{1,2})\s*日?"
    r"(?:\s*[\(（][^)）]*[\)）])?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$"
)
COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


@dataclass
class Problem:
    """One bad line: where it is, which draw, and why."""

    line: int | None
    draw_date: str | None
    reason: str
    raw: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        when = f" (draw {self.draw_date})" if self.draw_date else ""
        return f"{where}{when}: {self.reason}"


@dataclass
class Record:
    loto: str
    unique_id: str
    ds: date
    y: Decimal
    num: int | None
    co: int | None
    line: int


@dataclass
class ParseResult:
    layout: str
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines_read: int = 0
    frame: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """The good rows as text-typed columns loto, unique_id, ds, y, num, co (for COPY)."""
        if self.frame is not None:
            return self.frame
        return pd.DataFrame(
            {
                "loto": [r.loto for r in self.records],
                "unique_id": [r.unique_id for r in self.records],
                "ds": [r.ds.isoformat() for r in self.records],
                "y": [str(r.y) for r in self.records],
                "num": pd.array([r.num for r in self.records], dtype="Int64"),
                "co": pd.array([r.co for r in self.records], dtype="Int64"),
            }
        )

    @property
    def row_count(self) -> int:
        return len(self.frame) if self.frame is not None else len(self.records)


class FileLevelError(ValueError):
    """The whole file cannot be read (empty, unknown layout, wrong number of columns...)."""


def normalize(text: object) -> str:
    """NFKC (full-width digits and letters to ASCII), trimmed, without inner spaces."""
    if text is None:
        return ""
    value = unicodedata.normalize("NFKC", str(text)).strip().strip('"').strip()
    return re.sub(r"\s+", "", value)


def normalize_header(text: object) -> str:
    return normalize(text).lower().lstrip("\ufeff")


@lru_cache(maxsize=65536)
def parse_date(text: str) -> date | None:
    value = normalize(text)
    match = DATE_RE.match(value) or COMPACT_DATE_RE.match(value)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_int(text: object, *, money: bool = False) -> int | None:
    """An integer from a field ('12', '１２', '1,234円', '12.0'); None when it is not one."""
    value = normalize(text)
    if money:
        value = value.replace("円", "").replace("¥", "")
    value = value.replace(",", "")
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    if re.fullmatch(r"[+-]?\d+\.0*", value):
        return int(value.split(".")[0])
    return None


def parse_number(text: object) -> Decimal | None:
    value = normalize(text).replace(",", "")
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def decode(data: bytes) -> str:
    """UTF-8 (BOM or not), else CP932, the two encodings Japanese results files come in."""
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileLevelError("the file is neither UTF-8 nor CP932 (Shift_JIS) text; re-save it as UTF-8")


# --- wide layouts (one draw per line or per JSON object) -------------------------------------


@dataclass
class WideLayout:
    date_key: str
    num_key: str | None
    co_key: str | None
    main_keys: list[tuple[str, str]]  # (unique_id, key)
    bonus_keys: list[tuple[str, str]]
    digits_key: str | None = None


def wide_layout(keys: list[str], spec: LotoSpec) -> WideLayout:
    """Map a file's headers (or JSON keys) onto positions, or say why they cannot be."""
    date_key = num_key = co_key = digits_key = None
    mains: dict[int, str] = {}
    bonus: dict[int, str] = {}
    for key in keys:
        name = normalize_header(key)
        # "抽せん日(曜日)", "キャリーオーバー(円)": a trailing remark does not change the column.
        base = re.sub(r"\([^)]*\)$", "", name)
        if date_key is None and (name in DATE_HEADERS or base in DATE_HEADERS):
            date_key = key
        elif num_key is None and (name in NUM_HEADERS or base in NUM_HEADERS):
            num_key = key
        elif co_key is None and (name in CARRY_HEADERS or base in CARRY_HEADERS):
            co_key = key
        elif digits_key is None and (name in DIGITS_HEADERS or base in DIGITS_HEADERS):
            digits_key = key
        elif any(pattern.match(name) for pattern in BONUS_PATTERNS):
            match = next(p.match(name) for p in BONUS_PATTERNS if p.match(name))
            bonus[int(match.group(1) or 1)] = key
        elif any(pattern.match(name) for pattern in MAIN_PATTERNS):
            match = next(p.match(name) for p in MAIN_PATTERNS if p.match(name))
            mains[int(match.group(1))] = key
    if date_key is None:
        raise FileLevelError(
            "no draw-date column: expected a header such as 抽選日, 抽せん日 or 日付 "
            f"(found: {', '.join(map(str, keys[:12]))})"
        )
    if digits_key is not None and not mains:
        return WideLayout(date_key, num_key, co_key, [], [], digits_key)
    if sorted(mains) != list(range(1, len(mains) + 1)):
        raise FileLevelError(f"main-number columns are not numbered 1..N: {sorted(mains)}")
    if len(mains) != spec.main_count:
        raise FileLevelError(
            f"wrong column count: the file has {len(mains)} main-number columns, "
            f"{spec.loto} draws {spec.main_count}; check --loto"
        )
    if len(bonus) > spec.bonus_count:
        raise FileLevelError(
            f"wrong column count: the file has {len(bonus)} bonus-number columns, "
            f"{spec.loto} draws {spec.bonus_count}; check --loto"
        )
    return WideLayout(
        date_key,
        num_key,
        co_key,
        [(f"N{i}", mains[i]) for i in sorted(mains)],
        [(f"B{i}", bonus[i]) for i in sorted(bonus)],
    )


def _wide_draw(
    fields: dict[str, object], layout: WideLayout, spec: LotoSpec, line: int, raw: str
) -> tuple[list[Record], list[str], str | None]:
    """Records of one draw and the reasons it is bad (no records when it is bad)."""
    reasons: list[str] = []
    date_text = normalize(fields.get(layout.date_key))
    ds = parse_date(date_text)
    shown_date = ds.isoformat() if ds else (date_text or None)
    if ds is None:
        reasons.append(f"unparseable date {date_text!r} (use 2017/4/5, 2017-04-05 or 2017年4月5日)")
    num = None
    if layout.num_key is not None:
        num_text = normalize(fields.get(layout.num_key))
        num = parse_int(re.sub(r"^第|回$", "", num_text))
        if num_text and num is None:
            reasons.append(f"unparseable draw number {num_text!r}")
    co = None
    if layout.co_key is not None:
        co_text = normalize(fields.get(layout.co_key))
        co = parse_int(co_text, money=True)
        if co_text and co is None and co_text not in {"-", "ー", "―"}:
            reasons.append(f"unparseable carry-over {co_text!r}")
    positions: list[tuple[str, str]] = []
    if layout.digits_key is not None:
        digits = normalize(fields.get(layout.digits_key))
        if not re.fullmatch(r"\d+", digits) or len(digits) != spec.main_count:
            reasons.append(f"winning number {digits!r} is not {spec.main_count} digits")
        else:
            positions = [(f"N{i + 1}", ch) for i, ch in enumerate(digits)]
    else:
        positions = [(uid, fields.get(key)) for uid, key in layout.main_keys + layout.bonus_keys]
    values: list[tuple[str, int]] = []
    for uid, text in positions:
        value = parse_int(text)
        if value is None:
            reasons.append(f"{uid}: unparseable number {normalize(text)!r}")
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
    if reasons or ds is None:
        return [], reasons, shown_date
    records = [Record(spec.loto, uid, ds, Decimal(value), num, co, line) for uid, value in values]
    return records, [], shown_date


def _check_duplicates(
    draws: list[tuple[int, date | None, int | None, list[Record]]], result: ParseResult, raws: dict[int, str]
) -> None:
    by_date: dict[date, int] = {}
    by_num: dict[int, int] = {}
    for line, ds, num, records in draws:
        if not records:
            continue
        reason = None
        if ds in by_date:
            reason = f"duplicate draw: {ds.isoformat()} is already on line {by_date[ds]}"
        elif num is not None and num in by_num:
            reason = f"duplicate draw: draw number {num} is already on line {by_num[num]}"
        if reason:
            result.problems.append(Problem(line, ds.isoformat() if ds else None, reason, raws.get(line, "")))
            continue
        by_date[ds] = line
        if num is not None:
            by_num[num] = line
        result.records.extend(records)


def parse_wide_rows(
    rows: list[tuple[int, dict[str, object], str]], keys: list[str], spec: LotoSpec, layout_name: str
) -> ParseResult:
    layout = wide_layout(keys, spec)
    result = ParseResult(layout=layout_name, lines_read=len(rows))
    draws = []
    raws = {}
    for line, fields, raw in rows:
        records, reasons, shown_date = _wide_draw(fields, layout, spec, line, raw)
        raws[line] = raw
        if reasons:
            result.problems.append(Problem(line, shown_date, "; ".join(reasons), raw))
            continue
        draws.append((line, records[0].ds if records else None, records[0].num if records else None, records))
    _check_duplicates(draws, result, raws)
    return result


# --- long layout -----------------------------------------------------------------------------


def _normalize_column(values: pd.Series) -> pd.Series:
    """NFKC and trimming, applied per element only where a value is not plain ASCII."""
    values = values.fillna("").astype(str).str.strip()
    exotic = ~values.map(str.isascii)
    if exotic.any():
        values = values.where(~exotic, values[exotic].map(normalize))
    return values.str.strip('"')


def _map_unique(values: pd.Series, fn) -> pd.Series:
    """Apply ``fn`` once per distinct value (dates and ids repeat across a long file)."""
    uniques = values.unique()
    return values.map(dict(zip(uniques, map(fn, uniques), strict=True)))


def parse_long_rows(
    rows: list[tuple[int, list[str], str]], header: list[str], default_loto: str
) -> ParseResult:
    """Long format, vectorised: a million rows parse in seconds."""
    result = ParseResult(layout="long-csv", lines_read=len(rows))
    width = len(header)
    raws = {line: raw for line, _, raw in rows}
    for line, fields, raw in rows:
        if len(fields) != width:
            result.problems.append(
                Problem(line, None, f"wrong column count: {len(fields)} fields, the header has {width}", raw)
            )
    good_rows = [(line, fields) for line, fields, _ in rows if len(fields) == width]
    names = [normalize_header(name) for name in header]
    frame = pd.DataFrame([fields for _, fields in good_rows], columns=names, dtype=object)
    frame["line"] = np.fromiter((line for line, _ in good_rows), dtype=np.int64, count=len(good_rows))
    for name in ("loto", "num", "co"):
        if name not in frame:
            frame[name] = ""
    for name in ("loto", "unique_id", "ds", "y", "num", "co"):
        frame[name] = _normalize_column(frame[name])
    frame["loto"] = frame["loto"].where(frame["loto"] != "", default_loto)
    reasons = pd.Series("", index=frame.index, dtype=object)

    def flag(mask: pd.Series, text) -> None:
        if not mask.any():
            return
        messages = text(frame[mask]) if callable(text) else pd.Series(text, index=frame.index[mask])
        current = reasons[mask]
        reasons[mask] = current.where(current == "", current + "; ") + messages

    dates = _map_unique(frame["ds"], parse_date)
    frame["ds_date"] = dates
    flag(dates.isna(), lambda bad: "unparseable date " + bad["ds"].map(repr))
    flag(frame["unique_id"] == "", "empty unique_id")
    y_text = frame["y"].str.replace(",", "", regex=False)
    y_value = pd.to_numeric(y_text.where(y_text != "", None), errors="coerce")
    y_bad = y_value.isna() | ~np.isfinite(y_value.astype(float))
    flag(y_bad, lambda bad: "unparseable number y=" + bad["y"].map(repr))
    frame["y"] = y_text
    for name, money in (("num", False), ("co", True)):
        present = frame[name] != ""
        parsed = _map_unique(
            frame[name], lambda text, money=money: parse_int(text, money=money) if text else None
        )
        label = "draw number" if name == "num" else "carry-over"
        flag(
            present & parsed.isna(),
            lambda bad, name=name, label=label: f"unparseable {label} " + bad[name].map(repr),
        )
        frame[name] = parsed.astype("Int64")

    # Known lotteries: the position must exist and the number lie in its range.
    positions = pd.DataFrame(
        [
            (spec.loto, uid, low, high)
            for spec in load_specs().values()
            for uid, (low, high) in spec.position_ranges.items()
        ],
        columns=["loto", "unique_id", "range_min", "range_max"],
    )
    known = frame["loto"].isin(set(positions["loto"]))
    if known.any():
        merged = frame[["loto", "unique_id"]].merge(positions, how="left", on=["loto", "unique_id"])
        merged.index = frame.index
        no_position = known & merged["range_min"].isna() & (frame["unique_id"] != "")
        flag(
            no_position,
            lambda bad: (
                "unique_id "
                + bad["unique_id"].map(repr)
                + " is not a position of "
                + bad["loto"]
                + " ("
                + bad["loto"].map(lambda loto: ", ".join(load_specs()[loto].unique_ids))
                + ")"
            ),
        )
        checkable = known & ~no_position & ~y_bad
        fractional = checkable & (y_value != np.floor(y_value))
        flag(fractional, lambda bad: bad["unique_id"] + ": " + bad["y"] + " is not a whole number")
        outside = (
            checkable & ~fractional & ((y_value < merged["range_min"]) | (y_value > merged["range_max"]))
        )
        flag(
            outside,
            lambda bad: (
                bad["unique_id"]
                + ": "
                + bad["y"]
                + " is out of range "
                + merged.loc[bad.index, "range_min"].astype(int).astype(str)
                + "-"
                + merged.loc[bad.index, "range_max"].astype(int).astype(str)
                + " for "
                + bad["loto"]
            ),
        )

    # Duplicates: the second and later copies of (loto, unique_id, ds) among otherwise good rows.
    valid = reasons == ""
    grain = ["loto", "unique_id", "ds_date"]
    duplicate = valid & frame[grain].duplicated(keep="first") & frame["ds_date"].notna()
    if duplicate.any():
        first_line = frame[valid & ~duplicate].set_index(grain)["line"]
        flag(
            duplicate,
            lambda bad: bad.apply(
                lambda row: (
                    f"duplicate draw: {row['loto']} {row['unique_id']} on {row['ds_date'].isoformat()} "
                    f"is already on line {first_line.get((row['loto'], row['unique_id'], row['ds_date']))}"
                ),
                axis=1,
            ),
        )

    # A draw of a lottery without repeats may not hold one number twice: all its rows are bad.
    no_repeat = {spec.loto for spec in load_specs().values() if not spec.allow_repeats}
    valid = reasons == ""
    candidates = valid & frame["loto"].isin(no_repeat)
    if candidates.any():
        sub = frame[candidates].assign(y_value=y_value[candidates])
        repeated = sub.duplicated(["loto", "ds_date", "y_value"], keep=False)
        if repeated.any():
            groups = sub[repeated].groupby(["loto", "ds_date", "y_value"])["unique_id"].agg(" and ".join)
            keys = sub[repeated].set_index(["loto", "ds_date", "y_value"]).index
            messages = pd.Series(
                [f"number {key[2]:g} repeats within the draw ({groups[key]})" for key in keys],
                index=sub.index[repeated],
            )
            mask = pd.Series(False, index=frame.index)
            mask[messages.index] = True
            flag(mask, lambda bad: messages[bad.index])

    bad = reasons != ""
    for index in frame.index[bad]:
        row = frame.loc[index]
        shown = row["ds_date"].isoformat() if isinstance(row["ds_date"], date) else (row["ds"] or None)
        result.problems.append(
            Problem(int(row["line"]), shown, reasons[index], raws.get(int(row["line"]), ""))
        )
    result.problems.sort(key=lambda problem: problem.line or 0)
    good = frame[~bad]
    result.frame = pd.DataFrame(
        {
            "loto": good["loto"],
            "unique_id": good["unique_id"],
            "ds": good["ds_date"].map(date.isoformat),
            "y": good["y"],
            "num": good["num"],
            "co": good["co"],
        }
    )
    return result


# --- entry point -----------------------------------------------------------------------------


def _json_objects(text: str) -> list[tuple[int, dict, str]]:
    """The objects of a top-level JSON list with the line each starts on."""
    decoder = json.JSONDecoder()
    stripped = text.lstrip()
    if not stripped:
        raise FileLevelError("the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileLevelError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if isinstance(document, dict):
        lists = [value for value in document.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise FileLevelError("JSON must be a list of draws (or an object holding one list of draws)")
        document = lists[0]
        start = text.index("[", text.index("{"))
    else:
        start = text.index("[")
    if not isinstance(document, list):
        raise FileLevelError("JSON must be a list of draws")
    objects: list[tuple[int, dict, str]] = []
    position = start + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            break
        value, end = decoder.raw_decode(text, position)
        line = text.count("\n", 0, position) + 1
        if not isinstance(value, dict):
            raise FileLevelError(f"line {line}: a draw must be a JSON object, got {type(value).__name__}")
        objects.append((line, value, text[position:end]))
        position = end
    return objects


def _csv_rows(text: str) -> tuple[list[str], list[tuple[int, list[str], str]]]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not any(line.strip() for line in lines):
        raise FileLevelError("the file is empty")
    sample = next(line for line in lines if line.strip())
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, list[str], str]] = []
    for fields in reader:
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        if header is None:
            header = fields
            continue
        # A trailing delimiter on every line is common; empty extra fields are not data.
        while len(fields) > len(header) and not fields[-1].strip():
            fields = fields[:-1]
        rows.append((line, fields, lines[line - 1] if line - 1 < len(lines) else ""))
    if header is None:
        raise FileLevelError("the file is empty")
    if not rows:
        raise FileLevelError("the file is empty: a header and no draws")
    return header, rows


def _fast_long_rows(text: str) -> tuple[list[str], list[tuple[int, list[str], str]]] | None:
    """Rows of an unquoted long-format CSV through pandas' C reader; None if it does not apply."""
    if '"' in text:
        return None
    lines = text.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    if len(nonblank) < 2:
        return None
    header_line = lines[nonblank[0]].rstrip("\r")
    if "\t" in header_line or not set(LONG_REQUIRED) <= {normalize_header(h) for h in header_line.split(",")}:
        return None
    width = header_line.count(",")
    body = [i for i in nonblank[1:] if lines[i].rstrip("\r").rstrip(",").count(",") == width]
    if len(body) != len(nonblank) - 1:
        return None  # ragged lines: the careful reader names them
    frame = pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=True
    )
    if len(frame) != len(body):
        return None
    values = frame.to_numpy(dtype=object)
    return list(frame.columns), [(i + 1, row, "") for i, row in zip(body, values.tolist(), strict=True)]


def parse_text(text: str, loto: str) -> ParseResult:
    fast = _fast_long_rows(text) if not text.lstrip().startswith(("[", "{")) else None
    if fast is not None:
        header, rows = fast
        result = parse_long_rows(rows, header, loto)
        lines = text.split("\n")
        for problem in result.problems:
            problem.raw = lines[problem.line - 1].rstrip("\r") if problem.line else ""
        return result
    if text.lstrip().startswith(("[", "{")):
        objects = _json_objects(text)
        if not objects:
            raise FileLevelError("the file is empty: no draws in the JSON list")
        spec = _known_spec(loto, layout="JSON")
        keys: list[str] = []
        for _, obj, _ in objects:
            keys.extend(key for key in obj if key not in keys)
        rows = [(line, obj, raw) for line, obj, raw in objects]
        return parse_wide_rows(rows, keys, spec, "json")
    header, rows = _csv_rows(text)
    names = {normalize_header(name) for name in header}
    if set(LONG_REQUIRED) <= names:
        return parse_long_rows(rows, header, loto)
    spec = _known_spec(loto, layout="wide CSV")
    wide_rows = []
    bad: list[Problem] = []
    for line, fields, raw in rows:
        if len(fields) != len(header):
            bad.append(
                Problem(
                    line,
                    None,
                    f"wrong column count: {len(fields)} fields, the header has {len(header)}",
                    raw,
                )
            )
            continue
        wide_rows.append((line, dict(zip(header, fields, strict=True)), raw))
    result = parse_wide_rows(wide_rows, header, spec, "wide-csv")
    result.lines_read = len(rows)
    for problem in bad:
        fields = dict(zip(header, next(f for ln, f, _ in rows if ln == problem.line), strict=False))
        date_key = next((k for k in header if normalize_header(k) in DATE_HEADERS), None)
        parsed = parse_date(str(fields.get(date_key, ""))) if date_key else None
        problem.draw_date = parsed.isoformat() if parsed else None
    result.problems = sorted(result.problems + bad, key=lambda problem: problem.line or 0)
    return result


def _known_spec(loto: str, *, layout: str) -> LotoSpec:
    spec = get_spec(loto)
    if spec is None:
        known = ", ".join(sorted(load_specs()))
        raise FileLevelError(
            f"unknown lottery {loto!r} for a {layout} file: known lotteries are {known}; "
            "for your own series use the long format with columns loto, unique_id, ds, y[, num, co]"
        )
    return spec


def parse_file(path: Path, loto: str) -> ParseResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileLevelError(f"cannot read {path}: {exc.strerror}") from exc
    if not data.strip():
        raise FileLevelError("the file is empty")
    return parse_text(decode(data), loto)
