"""What a parser reports: a bad line (:class:`Problem`) or a file it cannot read at all."""

from __future__ import annotations

from dataclasses import dataclass

# A bad line's text is kept for the rejects table and the report, cut to this many characters.
RAW_LINE_KEEP = 2000


@dataclass
class Problem:
    """One bad line: where it is, which draw, and why."""

    line: int | None
    draw_date: str | None
    reason: str
    raw: str = ""

    def __post_init__(self) -> None:
        self.raw = self.raw[:RAW_LINE_KEEP]
        if self.draw_date is not None:
            self.draw_date = self.draw_date[:40]

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        when = f" (draw {self.draw_date})" if self.draw_date else ""
        return f"{where}{when}: {self.reason}"


class FileLevelError(ValueError):
    """The whole file cannot be read (empty, unknown layout, unusable header...)."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        self.message = message
        super().__init__(message if line is None else f"line {line}: {message}")
