"""Operations: memory stays bounded whatever the file size; commands started together on a new
checkout start one embedded server; `db stop` really stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from python_jobs import config
from python_jobs.ingest import ingest_file, load, parse
from python_jobs.tests.ingest_files import raw_rows

REPO = str(config.REPO_ROOT)


def write_long_file(path: Path, series: int, dates: int) -> int:
    """A long-format panel with wide-ish rows; returns the row count."""
    days = [(date(2000, 1, 1) + timedelta(days=i)).isoformat() for i in range(dates)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("loto,unique_id,ds,y,num,co\n")
        for s in range(series):
            uid = f"series_{s:05d}_of_a_generated_panel_for_memory"
            handle.write(
                "".join(
                    f"my_panel,{uid},{d},{(s * 7 + i * 13) % 1000}.125,{i + 1},\n" for i, d in enumerate(days)
                )
            )
    return series * dates


@pytest.mark.slow
def test_memory_stays_bounded_for_a_50_mb_file(tmp_path):
    path = tmp_path / "big.csv"
    rows = write_long_file(path, series=600, dates=1100)
    assert path.stat().st_size > 50e6
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from python_jobs.ingest.parse import parse_file
        parsed = parse_file(Path({str(path)!r}), "my_panel")
        rows = sum(len(chunk.draws) for chunk in parsed.chunks())
        # VmHWM is this process's own peak: getrusage's ru_maxrss keeps the peak of the
        # process that started it (exec keeps it), here a pytest worker of a gigabyte.
        status = Path("/proc/self/status").read_text()
        peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
        print(rows, peak_kb // 1024)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        check=True,
    )
    parsed_rows, peak_mb = map(int, proc.stdout.split())
    assert parsed_rows == rows
    # Everything at once took about 25x the file size; a stream holds one chunk.
    assert peak_mb < 1024, f"peak RSS {peak_mb} MB for a {path.stat().st_size / 1e6:.0f} MB file"


def test_a_file_streams_through_in_chunks(pg_url, fresh_schema, tmp_path, monkeypatch):
    fresh_schema("stream")
    path = tmp_path / "panel.csv"
    rows = write_long_file(path, series=7, dates=300)
    staged: list[int] = []
    real = load._stage_chunk

    def counting(conn, chunk):
        staged.append(len(chunk.draws))
        real(conn, chunk)

    monkeypatch.setattr(parse, "CHUNK_LINES", 500)
    monkeypatch.setattr(load, "_stage_chunk", counting)
    result = ingest_file("my_panel", path, url=pg_url)
    assert result.rows_inserted == rows == len(raw_rows(pg_url))
    assert staged == [500] * (rows // 500) + ([rows % 500] if rows % 500 else [])


def test_the_cyclic_collector_pauses_while_a_file_streams_in(pg_url, fresh_schema, tmp_path, monkeypatch):
    """Off while chunks are parsed and copied, back on after, also where a line fails the load."""
    import gc

    fresh_schema("gc_pause")
    path = tmp_path / "panel.csv"
    write_long_file(path, series=3, dates=40)
    seen: list[bool] = []
    real = load._stage_chunk

    def recording(conn, chunk):
        seen.append(gc.isenabled())
        real(conn, chunk)

    monkeypatch.setattr(parse, "CHUNK_LINES", 50)
    monkeypatch.setattr(load, "_stage_chunk", recording)
    assert gc.isenabled()
    ingest_file("my_panel", path, url=pg_url)
    assert seen and not any(seen)
    assert gc.isenabled()

    bad = tmp_path / "bad.csv"
    bad.write_text("loto,unique_id,ds,y\nmy_panel,N1,2000-01-03,1\nmy_panel,N1,not a date,2\n")
    with pytest.raises(load.IngestError):
        ingest_file("my_panel", bad, url=pg_url)
    assert gc.isenabled()
    gc.disable()
    try:
        ingest_file("my_panel", path, url=pg_url)
        assert not gc.isenabled()  # as it was before the load
    finally:
        gc.enable()


def _postmaster_alive(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _embedded_env(local: Path) -> dict[str, str]:
    """A command's environment that uses the embedded PostgreSQL under ``local``."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"LOTO_LOCAL_DIR": str(local), "PYTHONPATH": REPO})
    return env


DB_STOP = [sys.executable, "-m", "python_jobs", "db", "stop"]


@pytest.mark.slow
def test_db_stop_stops_after_a_client_was_killed(tmp_path):
    env = _embedded_env(tmp_path / "local")
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, psycopg\nfrom python_jobs import db\n"
            "conn = psycopg.connect(db.database_url())\nprint('ready', flush=True)\ntime.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert client.stdout.readline().strip() == "ready"
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait(10)
    pgdata = tmp_path / "local" / "pgdata"
    pid = _postmaster_alive(pgdata)
    assert pid is not None, "the embedded server should still run after its client was killed"
    proc = subprocess.run(
        DB_STOP, capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=120
    )
    assert proc.returncode == 0 and "stopped" in proc.stdout, proc.stderr
    for _ in range(50):
        if _postmaster_alive(pgdata) is None:
            break
        time.sleep(0.1)
    assert _postmaster_alive(pgdata) is None
    proc = subprocess.run(DB_STOP, capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=60)
    assert proc.returncode == 0 and "was not running" in proc.stdout


@pytest.mark.slow
def test_commands_started_together_wait_for_one_first_start(tmp_path, monkeypatch):
    """Two commands on a new checkout: while one holds the first-start lock the other neither
    creates the data folder nor runs initdb; then both get the one server."""
    from python_jobs import db

    local = tmp_path / "local"
    monkeypatch.setattr(config, "PGDATA_DIR", local / "pgdata")
    env = _embedded_env(local)
    code = "from python_jobs import db\nprint(db.database_url(), flush=True)"
    with db._first_start_lock():
        command = [sys.executable, "-c", code]
        clients = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env) for _ in range(2)
        ]
        time.sleep(3)
        assert all(client.poll() is None for client in clients), "a command did not wait for the lock"
        assert not (local / "pgdata").exists()
    try:
        urls = {client.communicate(timeout=120)[0].strip() for client in clients}
        assert [client.returncode for client in clients] == [0, 0]
        assert urls == {f"postgresql://postgres:@/postgres?host={local / 'pgdata'}"}
        assert (local / "pgdata" / "PG_VERSION").exists()
    finally:
        subprocess.run(DB_STOP, capture_output=True, cwd=REPO, env=env, check=False, timeout=120)
