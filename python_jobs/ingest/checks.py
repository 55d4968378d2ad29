"""Checks over the whole file and over the stored draws, run in SQL inside the load.

The parsers see a chunk at a time; what needs the whole file (a draw twice, one draw number on
two dates, a number repeated across a draw's lines) is checked over the staged temporary
tables. After the merge, every draw the file touched is checked again as stored, so a file
that is right on its own but breaks a draw already in the table (a correction that makes a
number repeat, a missing position) rolls the whole load back, naming the draw.

``ds`` is a timestamp; messages show it as PostgreSQL prints it without a midnight time
(``regexp_replace(ds::text, ' 00:00:00$', '')``), so a lottery's draw reads ``2000-10-05``.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from python_jobs.ingest.problems import Problem
from python_jobs.ingest.spec import LotoSpec

STAGING_DDL = """
create temporary table _ingest_draws (
    loto text, unique_id text, ds timestamp, y numeric, num integer, co bigint, line integer
) on commit drop;
create temporary table _ingest_prizes (
    loto text, ds date, tier integer, winners bigint, prize bigint, line integer
) on commit drop;
create temporary table _ingest_problems (
    line integer, draw_date text, reason text, raw_line text, kind text not null default 'row'
) on commit drop;
create temporary table _ingest_specs (
    loto text primary key, main_count integer, bonus_count integer, allow_repeats boolean
) on commit drop;
create temporary table _ingest_positions (
    loto text, unique_id text, category text, range_min numeric, range_max numeric,
    primary key (loto, unique_id)
) on commit drop;
"""

# Second and later copies of a (loto, unique_id, ds), and a lottery's draw number given two
# dates. The repeated keys are found by hashing (no sort of the whole file), and only their
# rows are read again.
FILE_DUPLICATES = """
insert into _ingest_problems (line, draw_date, reason, raw_line, kind)
select copies.line, regexp_replace(copies.ds::text, ' 00:00:00$', ''),
       'duplicate draw: ' || copies.loto || ' '
       || string_agg(copies.unique_id, ', ' order by copies.unique_id)
       || ' on ' || regexp_replace(copies.ds::text, ' 00:00:00$', '') || ' is already on line '
       || min(repeated.first_line),
       '', 'duplicate'
from _ingest_draws as copies
inner join (
    select loto, unique_id, ds, min(line) as first_line
    from _ingest_draws
    group by loto, unique_id, ds
    having count(*) > 1
) as repeated
    on repeated.loto = copies.loto and repeated.unique_id = copies.unique_id and repeated.ds = copies.ds
where copies.line <> repeated.first_line
group by copies.line, copies.loto, copies.ds;

insert into _ingest_problems (line, draw_date, reason, raw_line, kind)
select distinct line, regexp_replace(ds::text, ' 00:00:00$', ''),
       'duplicate draw: draw number ' || num || ' is already on line ' || first_line
       || ' (' || regexp_replace(first_ds::text, ' 00:00:00$', '') || ')',
       '', 'duplicate'
from (
    select line, loto, num, ds,
           first_value(line) over numbered as first_line,
           first_value(ds) over numbered as first_ds
    from _ingest_draws
    -- a series of the user's own may number its rows per series: only lotteries number draws
    where num is not null and loto in (select loto from _ingest_specs)
    window numbered as (partition by loto, num order by line)
) as numbered
where ds <> first_ds
  and not exists (select 1 from _ingest_problems as known where known.line = numbered.line);
"""

# A number twice in one draw of a lottery without repeats (rows of a draw on several lines).
FILE_REPEATS = """
insert into _ingest_problems (line, draw_date, reason, raw_line)
select draws.line, regexp_replace(draws.ds::text, ' 00:00:00$', ''),
       'number ' || draws.y || ' repeats within the draw (' || repeats.positions || ')', ''
from _ingest_draws as draws
inner join (
    select staged.loto, staged.ds, staged.y,
           string_agg(staged.unique_id, ' and ' order by staged.unique_id) as positions
    from _ingest_draws as staged
    inner join _ingest_specs as specs on specs.loto = staged.loto
    where not specs.allow_repeats
      and not exists (select 1 from _ingest_problems as known where known.line = staged.line)
    group by staged.loto, staged.ds, staged.y
    having count(*) > 1
) as repeats on repeats.loto = draws.loto and repeats.ds = draws.ds and repeats.y = draws.y
where not exists (select 1 from _ingest_problems as known where known.line = draws.line);
"""

# With --skip-bad-rows, the other rows of a known lottery's draw with a bad row go too:
# loading the rest would store an incomplete draw.
SIBLINGS_OF_BAD_ROWS = """
insert into _ingest_problems (line, draw_date, reason, raw_line)
select draws.line, regexp_replace(draws.ds::text, ' 00:00:00$', ''),
       'another row of this draw is bad (line ' || min(bad.line) || ')', ''
from _ingest_draws as draws
inner join _ingest_specs as specs on specs.loto = draws.loto
inner join _ingest_problems as bad
    on bad.draw_date = regexp_replace(draws.ds::text, ' 00:00:00$', '') and bad.kind = 'row'
where not exists (select 1 from _ingest_problems as known where known.line = draws.line)
group by draws.line, draws.ds;
"""

STORED_DRAWS = """
with touched as (
    select loto, ds, min(line) as first_line
    from _ingest_draws
    where loto in (select loto from _ingest_specs)
    group by loto, ds
),
stored as (
    select raw.loto, raw.ds, raw.unique_id, raw.y, raw.num, touched.first_line,
           positions.category, positions.range_min, positions.range_max,
           specs.main_count, specs.bonus_count, specs.allow_repeats
    from {draws} as raw
    inner join touched on touched.loto = raw.loto and touched.ds = raw.ds
    inner join _ingest_specs as specs on specs.loto = raw.loto
    left join _ingest_positions as positions
        on positions.loto = raw.loto and positions.unique_id = raw.unique_id
),
per_draw as (
    select loto, ds, min(first_line) as first_line,
           count(*) filter (where category = 'main') as main_rows,
           max(main_count) as main_count,
           count(*) filter (where category = 'bonus') as bonus_rows,
           max(bonus_count) as bonus_count,
           string_agg(unique_id, ', ') filter (where category is null) as unknown_positions,
           string_agg(unique_id || '=' || y, ', ')
               filter (where y < range_min or y > range_max or y <> trunc(y)) as outside,
           bool_and(allow_repeats) as allow_repeats,
           count(distinct y) as distinct_values,
           count(*) as rows_stored,
           count(distinct num) as draw_numbers
    from stored
    group by loto, ds
)
select first_line, loto, regexp_replace(ds::text, ' 00:00:00$', ''), concat_ws('; ',
    case when main_rows <> main_count
        then main_rows || ' main numbers stored, ' || loto || ' draws ' || main_count end,
    case when bonus_rows > bonus_count
        then bonus_rows || ' bonus numbers stored, ' || loto || ' draws ' || bonus_count end,
    case when unknown_positions is not null
        then 'positions ' || unknown_positions || ' are not positions of ' || loto end,
    case when outside is not null then 'numbers out of range: ' || outside end,
    case when not allow_repeats and distinct_values < rows_stored then 'a number repeats within the draw' end,
    case when draw_numbers > 1 then 'its rows hold ' || draw_numbers || ' different draw numbers' end
)
from per_draw
where main_rows <> main_count
   or bonus_rows > bonus_count
   or unknown_positions is not null
   or outside is not null
   or (not allow_repeats and distinct_values < rows_stored)
   or draw_numbers > 1
order by first_line
limit 200
"""

STORED_DRAW_NUMBERS = """
select min(staged.line), raw.loto, raw.num,
       string_agg(distinct regexp_replace(raw.ds::text, ' 00:00:00$', ''), ', ') as dates
from {draws} as raw
inner join (
    select loto, num, min(line) as line
    from _ingest_draws
    where num is not null and loto in (select loto from _ingest_specs)
    group by loto, num
) as staged on staged.loto = raw.loto and staged.num = raw.num
group by raw.loto, raw.num
having count(distinct raw.ds) > 1
order by 1
limit 200
"""


def create_staging(conn: psycopg.Connection, specs: Iterable[LotoSpec]) -> None:
    """Temporary tables for the file's rows and problems, and the lottery rules to check."""
    conn.execute(STAGING_DDL)
    specs = list(specs)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into _ingest_specs values (%s, %s, %s, %s)",
            [(spec.loto, spec.main_count, spec.bonus_count, spec.allow_repeats) for spec in specs],
        )
        cur.executemany(
            "insert into _ingest_positions values (%s, %s, %s, %s, %s)",
            [
                (spec.loto, uid, "bonus" if uid.startswith("B") else "main", low, high)
                for spec in specs
                for uid, (low, high) in spec.position_ranges.items()
            ],
        )


def find_file_problems(conn: psycopg.Connection, *, skip_bad_rows: bool) -> None:
    """Add the whole-file problems to ``_ingest_problems``."""
    conn.execute("analyze _ingest_draws")
    conn.execute("create index on _ingest_problems (line)")
    conn.execute(FILE_DUPLICATES)
    conn.execute(FILE_REPEATS)
    if skip_bad_rows:
        conn.execute(SIBLINGS_OF_BAD_ROWS)


def drop_bad_lines(conn: psycopg.Connection) -> None:
    """Remove every staged row of a bad line (``--skip-bad-rows``)."""
    for table in ("_ingest_draws", "_ingest_prizes"):
        conn.execute(
            sql.SQL(
                "delete from {} as staged "
                "where exists (select 1 from _ingest_problems as bad where bad.line = staged.line)"
            ).format(sql.Identifier(table))
        )


def stored_draw_problems(conn: psycopg.Connection, draws: sql.Composable) -> list[Problem]:
    """Draws the file touched that, as stored after the merge, break their lottery's rules."""
    problems = [
        Problem(line, ds, f"after the merge the stored {loto} draw of {ds} would break its rules: {reason}")
        for line, loto, ds, reason in conn.execute(sql.SQL(STORED_DRAWS).format(draws=draws)).fetchall()
    ]
    for line, loto, num, dates in conn.execute(sql.SQL(STORED_DRAW_NUMBERS).format(draws=draws)).fetchall():
        problems.append(
            Problem(
                line,
                None,
                f"after the merge {loto} draw number {num} would be stored on several dates ({dates})",
            )
        )
    return sorted(problems, key=lambda problem: problem.line or 0)
