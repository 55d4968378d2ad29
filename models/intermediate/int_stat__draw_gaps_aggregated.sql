-- One row per snapshot (loto, unique_id, as_of) of each series (as int_stat__moments_aggregated
-- lists them): the length, first and last ds, and the median number of days between
-- consecutive rows of the series cut at as_of (pandas `ds.diff().dt.days.median()` on a daily
-- series; fractional days between intraday rows; NULL for a single row).
-- Fast at any cadence: instead of sorting every prefix again, each gap value is counted per
-- period, the counts are accumulated over the periods, and the median is read off the
-- cumulative counts at the two middle ranks, interpolated as percentile_cont(0.5) does
-- (first + (second - first) * fraction, in double precision). A series has few distinct gaps
-- (a weekly lottery one or two), so this is a few rows per snapshot.
-- Analysed when built: features_stat_history joins the intermediates on (loto, unique_id,
-- as_of), and without statistics PostgreSQL guesses one row per join and nests loops over
-- every snapshot (minutes on a panel of 10,000 snapshots instead of a second).
{{ config(post_hook=['analyze {{ this }}']) }}

with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

ordered as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        {{ stat_snapshot_period_start('draws.ds') }} as period_start,
        lead({{ stat_snapshot_period_start('draws.ds') }}) over by_ds as next_period_start,
        row_number() over by_ds as series_length,
        first_value(draws.ds) over by_ds as series_start_date,
        -- Whole days for midnight timestamps, as the day count of a date difference.
        (extract(epoch from (draws.ds - lag(draws.ds) over by_ds)) / 86400)::double precision as gap_days
    from draws
    window by_ds as (partition by draws.loto, draws.unique_id order by draws.ds)
),

snapshots as (
    select
        ordered.loto,
        ordered.unique_id,
        ordered.ds as as_of,
        ordered.period_start,
        ordered.series_length::integer as series_length,
        ordered.series_start_date
    from ordered
    where ordered.next_period_start is distinct from ordered.period_start
),

gap_counts as (
    -- How often each gap value occurs in each period of each series.
    select
        ordered.loto,
        ordered.unique_id,
        ordered.period_start,
        ordered.gap_days,
        count(*) as n_gaps
    from ordered
    where ordered.gap_days is not null
    group by
        ordered.loto,
        ordered.unique_id,
        ordered.period_start,
        ordered.gap_days
),

gap_values as (
    select distinct
        gap_counts.loto,
        gap_counts.unique_id,
        gap_counts.gap_days
    from gap_counts
),

cumulative_counts as (
    -- Gaps of each value up to each snapshot: every period has its snapshot, so the running sum
    -- over the snapshots in time order covers every gap at or before as_of.
    select
        snapshots.loto,
        snapshots.unique_id,
        snapshots.as_of,
        snapshots.series_length,
        gap_values.gap_days,
        sum(coalesce(gap_counts.n_gaps, 0)) over (
            partition by snapshots.loto, snapshots.unique_id, gap_values.gap_days
            order by snapshots.as_of
            rows between unbounded preceding and current row
        ) as n_up_to
    from snapshots
    inner join gap_values
        on
            snapshots.loto = gap_values.loto
            and snapshots.unique_id = gap_values.unique_id
    left join gap_counts
        on
            snapshots.loto = gap_counts.loto
            and snapshots.unique_id = gap_counts.unique_id
            and snapshots.period_start = gap_counts.period_start
            and gap_values.gap_days = gap_counts.gap_days
),

ranked as (
    -- Gaps up to as_of sorted by value: this value holds the 0-based ranks [rank_from, rank_to).
    select
        cumulative_counts.*,
        sum(cumulative_counts.n_up_to) over (
            partition by cumulative_counts.loto, cumulative_counts.unique_id, cumulative_counts.as_of
            order by cumulative_counts.gap_days
            rows between unbounded preceding and current row
        ) as rank_to,
        -- percentile_cont(0.5) over n gaps reads ranks floor and ceil of 0.5 (n - 1)
        0.5 * (cumulative_counts.series_length - 2) as middle_rank
    from cumulative_counts
    where cumulative_counts.n_up_to > 0
),

middle_values as (
    select
        ranked.loto,
        ranked.unique_id,
        ranked.as_of,
        min(ranked.gap_days) filter (where ranked.rank_to > floor(ranked.middle_rank)) as first_value,
        min(ranked.gap_days) filter (where ranked.rank_to > ceil(ranked.middle_rank)) as second_value,
        min(ranked.middle_rank - floor(ranked.middle_rank))::double precision as fraction
    from ranked
    group by
        ranked.loto,
        ranked.unique_id,
        ranked.as_of
),

final as (
    select
        snapshots.loto,
        snapshots.unique_id,
        snapshots.as_of,
        snapshots.series_length,
        snapshots.series_start_date,
        snapshots.as_of as series_end_date,
        middle_values.first_value
        + (middle_values.second_value - middle_values.first_value) * middle_values.fraction
            as series_frequency_days
    from snapshots
    left join middle_values
        on
            snapshots.loto = middle_values.loto
            and snapshots.unique_id = middle_values.unique_id
            and snapshots.as_of = middle_values.as_of
)

select * from final
