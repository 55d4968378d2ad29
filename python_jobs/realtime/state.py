"""The online engine's saved state as data: NumPy arrays and a JSON header, never a pickle.

:func:`dump_engine` writes :meth:`RealTimeFeatureEngine.to_state` as one uncompressed ``.npz``
archive (``np.savez``): the member ``header`` is UTF-8 JSON (format, format version, feature-set
version, definitions, keys, lotteries), every other member a plain numeric array: the kernel
state of every series (:attr:`RealTimeFeatureEngine.state_arrays`, with the ``undo`` row that
lets a point of the same timestamp replace the newest one after a restart too), the histories
and the lotteries' domain state. A state of an older format version is refused (start without
it); nothing is converted.

:func:`load_engine` reads it back with ``np.load(..., allow_pickle=False)`` and checks, before
anything reaches an engine: the archive (a zip of stored ``.npy`` members, so what it holds is
no bigger than the bytes read), the header's fields and types, the format version, the
feature-set version (the layout's ``version``: the definitions and column names), the set of
arrays, each array's dtype and shape against the key count and the layout, and the values the
compiled kernel indexes with (ring heads and row counts). Anything else (a pickle, random or
truncated bytes, an array of Python objects, a state of other definitions) raises
:class:`StateError` with a one-line reason. See ``docs/decisions/0010-data-only-state-and-model-files.md``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from python_jobs.realtime.domain import DOMAIN_ARRAYS, arrays_problem
from python_jobs.realtime.engine import RealTimeFeatureEngine
from python_jobs.realtime.history import subsequence_count

FORMAT = "loto-features/engine-state"
# 2: each series' ``undo`` row (what its newest point overwrote), for same-timestamp replacement.
FORMAT_VERSION = 2
HEADER = "header"
HISTORY_ARRAYS = {
    "history_n": np.int64,
    "history_values": np.float64,
    "history_means": np.float64,
    "history_stds": np.float64,
    "history_constant": np.bool_,
}
_ZIP_MAGIC = b"PK\x03\x04"


class StateError(ValueError):
    """A saved engine state that is refused; the message is one line naming why."""


def dump_engine(engine: RealTimeFeatureEngine) -> bytes:
    """The engine's state as ``.npz`` bytes (arrays and a JSON header; no Python objects).

    Parameters
    ----------
    engine : RealTimeFeatureEngine
        The engine to save; it is not changed.

    Returns
    -------
    bytes
        What :func:`load_engine` reads back.
    """
    header, arrays = engine.to_state()
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **header})
    buffer = io.BytesIO()
    np.savez(buffer, **{HEADER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}, **arrays)
    return buffer.getvalue()


def load_engine(blob: bytes, *, version: str, max_keys: int | None = None) -> RealTimeFeatureEngine:
    """The engine :func:`dump_engine` saved, after checking everything it holds.

    Parameters
    ----------
    blob : bytes
        The saved state (as read from Redis).
    version : str
        The feature-set version the caller serves (``engine.layout.version``); a state of
        other definitions is refused.
    max_keys : int, optional
        The bound on keys held; None keeps the saved one. With fewer allowed than saved, the
        most recently updated keys are kept.

    Returns
    -------
    RealTimeFeatureEngine
        An engine that continues exactly where the saved one stopped.

    Raises
    ------
    StateError
        The blob is not a state this code wrote for ``version`` (the message says why).
    """
    arrays = _read_archive(blob)
    header = _read_header(arrays.pop(HEADER, None))
    if header["version"] != version:
        raise StateError(f"state is of feature set {header['version']}, this engine's is {version}")
    blank = _blank_engine(header, version)
    _check_arrays(blank, header, arrays)
    return RealTimeFeatureEngine.from_state(header, arrays, max_keys=max_keys)


# -- the archive ---------------------------------------------------------------------------------


def _what_it_is(blob: bytes) -> str:
    if not blob:
        return "empty"
    if blob[:1] == b"\x80":
        return "a pickle, which is never loaded"
    return "not an .npz archive"


def _read_archive(blob: Any) -> dict[str, np.ndarray]:
    """Every member of the archive as an array; refuses pickles, objects, compression, damage."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise StateError(f"state must be bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if not blob.startswith(_ZIP_MAGIC):
        raise StateError(f"state refused: {_what_it_is(blob)}")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise StateError(f"state refused: truncated or damaged archive ({exc})") from None
    names = [member.filename for member in members]
    if len(set(names)) != len(names) or not all(name.endswith(".npy") for name in names):
        raise StateError("state refused: the archive holds members other than distinct .npy arrays")
    if any(member.compress_type != zipfile.ZIP_STORED for member in members):
        # np.savez stores; a compressed member could expand far beyond the bytes read.
        raise StateError("state refused: compressed archive members")
    arrays = {}
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            for name in npz.files:
                arrays[name] = npz[name]
    except ValueError as exc:
        # numpy says "Object arrays cannot be loaded when allow_pickle=False" for those.
        raise StateError(f"state refused: array {name!r} unreadable ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise StateError(f"state refused: truncated or damaged archive ({exc})") from None
    return arrays


# -- the header ----------------------------------------------------------------------------------


def _read_header(raw: np.ndarray | None) -> dict[str, Any]:
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise StateError("state refused: no JSON header")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StateError(f"state refused: header is not JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StateError("state refused: not an engine state header")
    if header.get("format_version") != FORMAT_VERSION:
        raise StateError(
            f"state format version {header.get('format_version')!r} is not {FORMAT_VERSION}; "
            "start without the saved state"
        )
    problem = _header_problem(header)
    if problem:
        raise StateError(f"state refused: {problem}")
    return header


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_problem(header: Mapping[str, Any]) -> str | None:
    """Why the header's fields are not those :meth:`RealTimeFeatureEngine.to_state` writes."""
    if not isinstance(header.get("version"), str) or not isinstance(header.get("defs"), dict):
        return "header lacks the feature-set version or definitions"
    if not isinstance(header.get("history_features"), bool):
        return "header's history_features is not a boolean"
    bound = header.get("max_keys")
    if bound is not None and not (_is_int(bound) and bound >= 1):
        return "header's max_keys is not a positive integer"
    keys = header.get("keys")
    if not isinstance(keys, list) or not all(isinstance(key, str) and key for key in keys):
        return "header's keys are not a list of non-empty strings"
    if len(set(keys)) != len(keys):
        return "header's keys repeat"
    if bound is not None and len(keys) > bound:
        return f"{len(keys)} keys saved, more than its max_keys {bound}"
    lotteries = header.get("lotteries")
    if not isinstance(lotteries, list) or not all(
        isinstance(item, dict)
        and set(item) == {"loto", "draws"}
        and isinstance(item["loto"], str)
        and _is_int(item["draws"])
        and item["draws"] >= 0
        for item in lotteries
    ):
        return "header's lotteries are not a list of {loto, draws}"
    if len({item["loto"] for item in lotteries}) != len(lotteries):
        return "header's lotteries repeat"
    return None


def _blank_engine(header: Mapping[str, Any], version: str) -> RealTimeFeatureEngine:
    """An empty engine of the saved definitions, which must be those of ``version``."""
    try:
        blank = RealTimeFeatureEngine(header["defs"], history_features=header["history_features"], capacity=1)
    except (ValueError, TypeError, KeyError) as exc:
        raise StateError(f"state refused: its definitions are unreadable ({type(exc).__name__})") from None
    if blank.layout.version != version:
        raise StateError(
            f"state's definitions are of feature set {blank.layout.version}, this engine's is {version}"
        )
    return blank


# -- the arrays ----------------------------------------------------------------------------------


def _expect(arrays: Mapping[str, np.ndarray], name: str, dtype: Any, shape: tuple[int | None, ...]) -> None:
    """``arrays[name]`` has exactly ``dtype`` and ``shape`` (None: any length on that axis)."""
    found = arrays[name]
    if found.dtype != np.dtype(dtype):
        raise StateError(f"state refused: {name} is {found.dtype}, expected {np.dtype(dtype)}")
    if len(found.shape) != len(shape) or any(
        want is not None and got != want for got, want in zip(found.shape, shape, strict=True)
    ):
        want_text = "x".join("n" if want is None else str(want) for want in shape) or "scalar"
        raise StateError(f"state refused: {name} has shape {found.shape}, expected {want_text}")


def _expected_names(engine: RealTimeFeatureEngine, header: Mapping[str, Any]) -> set[str]:
    names = set(engine.state_arrays)
    if header["history_features"]:
        names |= set(HISTORY_ARRAYS)
    for i in range(len(header["lotteries"])):
        names |= {f"domain{i}_{name}" for name in DOMAIN_ARRAYS}
    return names


def _check_arrays(
    engine: RealTimeFeatureEngine, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> None:
    """Every array present, known, of its dtype and shape, and consistent with the others."""
    expected = _expected_names(engine, header)
    unknown, missing = sorted(set(arrays) - expected), sorted(expected - set(arrays))
    if unknown or missing:
        detail = "; ".join(
            part
            for part in (
                f"unknown arrays {', '.join(unknown[:3])}" if unknown else "",
                f"missing arrays {', '.join(missing[:3])}" if missing else "",
            )
            if part
        )
        raise StateError(f"state refused: {detail}")
    count = len(header["keys"])
    for name, (dtype, shape, _) in engine.state_arrays.items():
        _expect(arrays, name, dtype, (count, *shape))
    _check_kernel_rows(arrays, engine.layout.history)
    if header["history_features"]:
        _check_histories(arrays, count, engine.layout.defs.mp_window)
    for i, lottery in enumerate(header["lotteries"]):
        own = {name: arrays[f"domain{i}_{name}"] for name in DOMAIN_ARRAYS}
        for name, (dtype, trailing) in DOMAIN_ARRAYS.items():
            _expect(own, name, dtype, (None, *trailing))
        problem = arrays_problem(own, engine.layout.defs.freq_windows, lottery["draws"])
        if problem:
            raise StateError(f"state refused: lottery {lottery['loto']}: {problem}")


def _check_kernel_rows(arrays: Mapping[str, np.ndarray], history: int) -> None:
    """Row counts non-negative and each ring head where that many values leave it."""
    count, head = arrays["count"], arrays["head"]
    expected_head = np.where(count > 0, (count - 1) % history, -1)
    if (count < 0).any() or not np.array_equal(head, expected_head):
        raise StateError("state refused: ring heads and row counts disagree")


def _check_histories(arrays: Mapping[str, np.ndarray], count: int, m: int) -> None:
    """One history length per key, the value and subsequence arrays as long as they add up to."""
    for name, dtype in HISTORY_ARRAYS.items():
        _expect(arrays, name, dtype, (count,) if name == "history_n" else (None,))
    lengths = arrays["history_n"]
    if (lengths < 0).any() or int(lengths.sum()) != len(arrays["history_values"]):
        raise StateError("state refused: history_n does not add up to history_values")
    held = sum(subsequence_count(n, m) for n in lengths.tolist())
    if not all(len(arrays[name]) == held for name in ("history_means", "history_stds", "history_constant")):
        raise StateError("state refused: the subsequence statistics do not match history_n")
    if (arrays["count"] != lengths).any():
        raise StateError("state refused: history_n differs from the kernel's row counts")
