"""Mapping a wide file's headers (or JSON keys) onto draw positions and prize tiers.

Every header must mean exactly one thing. A header that appears twice, two headers that mean
the same thing (``抽選日`` and ``日付``), or a header that is neither a known column nor a
known remark column is refused with the names of the columns: taking one of two ``数字1``
columns silently would load the wrong numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from python_jobs.ingest.problems import FileLevelError
from python_jobs.ingest.spec import LotoSpec, load_specs
from python_jobs.ingest.values import normalize_header

DATE_HEADERS = {
    "抽選日",
    "抽せん日",
    "抽籤日",
    "抽選日付",
    "抽せん日付",
    "日付",
    "開催日",
    "date",
    "ds",
    "draw_date",
}
NUM_HEADERS = {"開催回", "回号", "回別", "回", "回数", "抽選回", "抽せん回", "draw", "num", "draw_number"}
CARRY_HEADERS = {
    "キャリーオーバー",
    "キャリーオーバー額",
    "キャリーオーバー金額",
    "キャリー",
    "carryover",
    "co",
}
# One cell holding every main number ("07 10 12 17 23 28 34") or, for Numbers, the digits.
MAIN_CELL_HEADERS = {"当せん番号", "当選番号", "抽せん数字", "抽選数字", "当せん数字", "当選数字", "本数字"}
BONUS_CELL_HEADERS = {"ボーナス数字", "ボーナス", "bonus数字", "bonus", "b数字"}
# Columns some sites publish next to the draws; they hold no draw or prize data.
REMARK_HEADERS = {
    "特徴",
    "曜日",
    "備考",
    "販売実績",
    "販売実績額",
    "販売額",
    "販売金額",
    "販売口数",
    "売上",
    "売上額",
    "売上金額",
    "発売額",
    "発売金額",
    "合計",
    "奇数",
    "偶数",
    "セット球",
    "メモ",
    "発売期間",
    "販売期間",
    "出典",
    "note",
    "notes",
    "memo",
}
MAIN_PATTERNS = (
    re.compile(r"^数字(\d+)$"),
    re.compile(r"^第(\d+)数字$"),
    re.compile(r"^本数字(\d+)$"),
    re.compile(r"^n(\d+)$"),
)
BONUS_PATTERNS = (
    re.compile(r"^(?:ボーナス数字|ボーナス|bonus数字|bonus|b数字)\(?(\d+)\)?$"),
    re.compile(r"^第(\d+)ボーナス数字$"),
    re.compile(r"^数字b(\d+)$"),
    re.compile(r"^b(\d+)$"),
)
WINNERS_WORDS = ("口数", "当せん口数", "当選口数", "当せん数", "当選数", "当せん者数", "当選者数")
PRIZE_WORDS = ("賞金", "賞金額", "当せん金額", "当選金額", "当せん金", "当選金", "金額")
_TIER_NUMBER = re.compile(r"^(\d+|[一二三四五六七八九])等(.+)$")
_KANJI_DIGITS = {kanji: str(value) for value, kanji in enumerate("一二三四五六七八九", start=1)}
# A trailing remark such as "(円)", "(口)" or "(曜日)" does not change what a column holds.
_REMARK = re.compile(r"\([^)]*\)$")


@dataclass
class WideLayout:
    """Which key holds what, for one wide file."""

    date_key: str
    num_key: str | None = None
    co_key: str | None = None
    main_keys: list[tuple[str, str]] = field(default_factory=list)  # (unique_id, key)
    bonus_keys: list[tuple[str, str]] = field(default_factory=list)
    main_cell_key: str | None = None
    bonus_cell_key: str | None = None
    winners_keys: dict[int, str] = field(default_factory=dict)  # tier -> key
    prize_keys: dict[int, str] = field(default_factory=dict)
    # Prize columns of a tier the lottery does not have: any value in them is a bad line.
    unknown_tier_keys: dict[str, str] = field(default_factory=dict)  # key -> tier label

    @property
    def has_prizes(self) -> bool:
        return bool(self.winners_keys or self.prize_keys)


def _strip_remark(name: str) -> str:
    stripped = _REMARK.sub("", name)
    return stripped or name


def _tier_of(name: str, spec: LotoSpec) -> tuple[str, str] | None:
    """(tier label, 'winners'|'prize') of a prize header, or None."""
    match = _TIER_NUMBER.match(name)
    if match:
        label, rest = _KANJI_DIGITS.get(match.group(1), match.group(1)), match.group(2)
    else:
        # Named tiers of other lotteries are recognised too, so that a column of a tier this
        # lottery lacks (ミニ in a Numbers4 file) is named as such rather than unknown.
        named = {
            ja.replace("・", ""): ja for other in load_specs().values() for _, ja in other.tiers.values()
        }
        named.update({ja.replace("・", ""): str(tier) for tier, (_, ja) in spec.tiers.items()})
        bare = re.sub(r"[()・]", "", name)
        head = next((ja for ja in sorted(named, key=len, reverse=True) if bare.startswith(ja)), None)
        if head is None:
            return None
        label, rest = named[head], bare[len(head) :]
    if rest in WINNERS_WORDS:
        return label, "winners"
    if rest in PRIZE_WORDS:
        return label, "prize"
    return None


def classify(key: str, spec: LotoSpec) -> tuple[str, str | int | None]:
    """What one header holds: (role, detail). Role 'unknown' when nothing matches."""
    name = normalize_header(key)
    base = _strip_remark(name)
    # "ボーナス数字(2)": a number in parentheses is the position, not a remark.
    for pattern in BONUS_PATTERNS:
        match = pattern.match(name)
        if match:
            return "bonus", int(match.group(1))
    for role, names in (
        ("date", DATE_HEADERS),
        ("num", NUM_HEADERS),
        ("co", CARRY_HEADERS),
        ("main_cell", MAIN_CELL_HEADERS),
        ("bonus_cell", BONUS_CELL_HEADERS),
        ("remark", REMARK_HEADERS),
    ):
        if name in names or base in names:
            return role, None
    for role, patterns in (("bonus", BONUS_PATTERNS), ("main", MAIN_PATTERNS)):
        for pattern in patterns:
            match = pattern.match(base)
            if match:
                return role, int(match.group(1))
    # "1等賞金(円)" carries a remark; "1等(口数)" puts the word itself in parentheses.
    tier = _tier_of(base, spec) or _tier_of(name.replace("(", "").replace(")", ""), spec)
    if tier is not None:
        return f"{tier[1]}", tier[0]
    return "unknown", None


def _refuse_duplicates(keys: list[str]) -> None:
    seen: dict[str, str] = {}
    repeated: list[str] = []
    for key in keys:
        name = normalize_header(key)
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.setdefault(name, key)
    if repeated:
        raise FileLevelError(
            "duplicated header: "
            + ", ".join(repr(name) for name in repeated)
            + " (each column must appear once)"
        )


def wide_layout(keys: list[str], spec: LotoSpec) -> WideLayout:
    """Map a file's headers onto positions and tiers, or say which headers are wrong."""
    _refuse_duplicates(keys)
    roles: dict[tuple[str, object], list[str]] = {}
    unknown: list[str] = []
    for key in keys:
        role, detail = classify(key, spec)
        if role == "unknown":
            unknown.append(key)
        elif role != "remark":
            roles.setdefault((role, detail), []).append(key)
    if unknown:
        raise FileLevelError(
            "unknown header: "
            + ", ".join(repr(str(key)[:40]) for key in unknown[:12])
            + " (expected the draw date, 開催回, 数字1..N or 第N数字, ボーナス数字, キャリーオーバー, "
            "N等口数 / N等賞金, or a remark column such as 特徴 or 曜日)"
        )
    ambiguous = [keys_ for keys_ in roles.values() if len(keys_) > 1]
    if ambiguous:
        raise FileLevelError(
            "ambiguous header: "
            + "; ".join(
                " and ".join(repr(str(key)) for key in group) + " mean the same column" for group in ambiguous
            )
        )
    return _assemble(roles, spec, keys)


def _assemble(roles: dict[tuple[str, object], list[str]], spec: LotoSpec, keys: list[str]) -> WideLayout:
    def one(role: str) -> str | None:
        found = roles.get((role, None))
        return found[0] if found else None

    date_key = one("date")
    if date_key is None:
        raise FileLevelError(
            "no draw-date column: expected a header such as 抽選日, 抽せん日 or 日付 "
            f"(found: {', '.join(str(key)[:40] for key in keys[:12])})"
        )
    mains = {detail: found[0] for (role, detail), found in roles.items() if role == "main"}
    bonus = {detail: found[0] for (role, detail), found in roles.items() if role == "bonus"}
    layout = WideLayout(
        date_key, one("num"), one("co"), main_cell_key=one("main_cell"), bonus_cell_key=one("bonus_cell")
    )
    if layout.main_cell_key and mains:
        raise FileLevelError(
            f"ambiguous header: {layout.main_cell_key!r} and {', '.join(map(repr, mains.values()))} "
            "both hold the main numbers"
        )
    if layout.bonus_cell_key and bonus:
        raise FileLevelError(
            f"ambiguous header: {layout.bonus_cell_key!r} and {', '.join(map(repr, bonus.values()))} "
            "both hold the bonus numbers"
        )
    if not layout.main_cell_key:
        _check_positions(mains, bonus, spec)
    layout.main_keys = [(f"N{i}", mains[i]) for i in sorted(mains)]
    layout.bonus_keys = [(f"B{i}", bonus[i]) for i in sorted(bonus)]
    for (role, detail), found in roles.items():
        if role not in ("winners", "prize"):
            continue
        tier = int(str(detail)) if str(detail).isdigit() else None
        if tier is None or tier not in spec.tiers:
            layout.unknown_tier_keys[found[0]] = str(detail)
        elif role == "winners":
            layout.winners_keys[tier] = found[0]
        else:
            layout.prize_keys[tier] = found[0]
    return layout


def _check_positions(mains: dict, bonus: dict, spec: LotoSpec) -> None:
    if sorted(mains) != list(range(1, len(mains) + 1)):
        raise FileLevelError(f"main-number columns are not numbered 1..N: {sorted(mains)}")
    if len(mains) != spec.main_count:
        raise FileLevelError(
            f"wrong column count: the file has {len(mains)} main-number columns, "
            f"{spec.loto} draws {spec.main_count}; check --loto"
        )
    if sorted(bonus) != list(range(1, len(bonus) + 1)):
        raise FileLevelError(f"bonus-number columns are not numbered 1..N: {sorted(bonus)}")
    if len(bonus) > spec.bonus_count:
        raise FileLevelError(
            f"wrong column count: the file has {len(bonus)} bonus-number columns, "
            f"{spec.loto} draws {spec.bonus_count}; check --loto"
        )
