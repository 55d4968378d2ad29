{#-
    The freshness query of the raw draws (`dbt source freshness`): the earliest draw date that
    a lottery's weekly schedule (seed loto_schedule, outside the New Year break) puts after
    that lottery's newest loaded draw, over the lotteries with a schedule. dbt reports it as
    the source's max_loaded_at, and its age is how long ago a scheduled draw became due
    without being loaded: the source's warn_after says how late results may arrive. While
    every lottery is up to date the date lies in the future (age below zero: pass). Without a
    scheduled lottery (only a user's own series) it is now: nothing is due.
    Usage: config: {loaded_at_query: "{{ next_draw_due() }}"} on raw_lottery_draws
-#}
{% macro next_draw_due() -%}
    {#- A source cannot ref() a node: the seed's relation comes from the graph instead. -#}
    {%- set schedule_seed = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'seed')
        | selectattr('name', 'equalto', 'loto_schedule')
        | first -%}
    {%- set schedule_relation = api.Relation.create(
        database=schedule_seed.database, schema=schedule_seed.schema, identifier=schedule_seed.alias,
    ) -%}
    with

    newest_draws as (
        select
            draws.loto,
            max(draws.ds)::date as newest_draw_date
        from {{ this }} as draws
        group by draws.loto
    ),

    due_dates as (
        select
            newest_draws.loto,
            min(candidate.ds) as due_date
        from newest_draws
        cross join lateral (
            select newest_draws.newest_draw_date + day_offset as ds
            from generate_series(1, 366) as day_offsets (day_offset)
        ) as candidate
        inner join {{ schedule_relation }} as schedule
            on
                newest_draws.loto = schedule.loto
                and schedule.draw_weekday = {{ day_of_week('candidate.ds') }}
                and candidate.ds between schedule.valid_from_date and schedule.valid_to_date
        where not {{ is_new_year_break('candidate.ds') }}
        group by newest_draws.loto
    )

    select coalesce(min(due_dates.due_date)::timestamp, current_timestamp at time zone 'UTC')
    from due_dates
{%- endmacro %}
