{#-
    Post-hook of the incremental features_hist: deletes the stored rows whose draw is no
    longer in stg_lottery__draws (a deleted draw, or the old date of a draw whose date
    changed). delete+insert only replaces the keys a run emits, so without this such rows
    would stay. Nothing to do on a full refresh or a first build (no stored rows to compare).
    Usage: config(post_hook=["{{ features_hist_delete_unstaged_rows() }}"])
-#}
{% macro features_hist_delete_unstaged_rows() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as merged
        where not exists (
            select 1 from {{ ref('stg_lottery__draws') }} as draws
            where
                draws.loto = merged.loto
                and draws.unique_id = merged.unique_id
                and draws.ds = merged.ds
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
