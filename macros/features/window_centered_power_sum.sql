{#-
    n^(p-1) times the p-th centred power sum of a window of n rows, sum((y - mean)^p), from its
    power sums S1 .. Sp: the binomial expansion sum over k of C(p, k) (-S1)^(p-k) n^(k-1) Sk
    (S0 = n). For integer-valued y the sums are integers and so is this, computed in numeric:
    exact, whatever the size of the powers (p = 2 gives n S2 - S1^2, y_var_n_w{w}).
    The sums are read from `relation` as y_sum_w{n}, y_sq_sum_w{n} and y_pow{k}_sum_w{n}.
    Usage: {{ window_centered_power_sum('row_stats', 30, 3) }} as cube_n_w30
-#}
{% macro window_centered_power_sum(relation, n, p) -%}
    ({{ centered_power_terms(relation, n, p, 'numeric') }})
{%- endmacro %}

{#-
    The same value, as double precision, for whole-number sums: in bigint where every term of
    the expansion fits (the sum of the terms' magnitudes, bounded in double precision, is under
    4e18, half of bigint's range, so no product overflows), else in numeric. Both are exact, so
    the value is the same; bigint arithmetic is about twenty times cheaper than numeric, and for
    a lottery (y at most a few dozen) every window takes it. The numeric path reads each sum
    through bigint: PostgreSQL's double precision to numeric cast keeps 15 significant digits,
    and a window's sum of y^4 passes 10^15 long before 2^53 (90 rows of y near 2,000).
    Usage: {{ window_centered_power_sum_whole('row_windows', 30, 4) }} as y_centered_pow4_n_w30
-#}
{% macro window_centered_power_sum_whole(relation, n, p) -%}
    {%- set bound = centered_power_terms(relation, n, p, 'double precision', magnitude=true) -%}
    case
        when coalesce({{ bound }} < 4e18, true)
            then ({{ centered_power_terms(relation, n, p, 'bigint') }})::double precision
        else ({{ centered_power_terms(relation, n, p, 'whole numeric') }})::double precision
    end
{%- endmacro %}

{#-
    The sum of the terms of the expansion, each factor cast to `type`: the k = 0 and k = 1 terms together,
    (-1)^p (1 - p) S1^p, then C(p, k) (-1)^(p-k) n^(k-1) Sk S1^(p-k) for k = 2 .. p. With
    `magnitude`, the sum of their absolute values with |S1| taken as at least 1 instead: a bound
    on every partial product, however the factors multiply out (S1 may be 0 while Sk is large).
    The type 'whole numeric' reads a double precision sum of whole numbers as numeric through
    bigint (exact) where it fits one.
-#}
{% macro centered_power_terms(relation, n, p, type, magnitude=false) -%}
    {%- set sum_names = {1: 'y_sum_w', 2: 'y_sq_sum_w'} -%}
    {%- set first = power_sum_as(relation ~ '.y_sum_w' ~ n, type) -%}
    {%- if magnitude %}{% set first = 'greatest(abs(' ~ first ~ '), 1)' %}{% endif -%}
    {%- set lead = (1 if p % 2 == 0 else -1) * (1 - p) -%}
    {%- set terms = [((lead | abs) if magnitude else lead) ~ ([''] + [first] * p) | join(' * ')] -%}
    {%- set binomial = namespace(value=p) -%}
    {%- for k in range(2, p + 1) -%}
        {%- set binomial.value = binomial.value * (p - k + 1) // k -%}
        {%- set power_sum = power_sum_as(relation ~ '.' ~ sum_names.get(k, 'y_pow' ~ k ~ '_sum_w') ~ n, type) -%}
        {%- if magnitude %}{% set power_sum = 'abs(' ~ power_sum ~ ')' %}{% endif -%}
        {%- set coefficient = binomial.value * (1 if (p - k) % 2 == 0 or magnitude else -1) * (n ** (k - 1)) -%}
        {%- do terms.append(coefficient ~ ([''] + [power_sum] + [first] * (p - k)) | join(' * ')) -%}
    {%- endfor -%}
    {{ terms | join(' + ') }}
{%- endmacro %}

{#- A power sum cast to `type`; 'whole numeric': through bigint where the value fits one. -#}
{% macro power_sum_as(column, type) -%}
    {%- if type == 'whole numeric' -%}
        (case when abs({{ column }}) < 9e18 then {{ column }}::bigint::numeric else {{ column }}::numeric end)
    {%- else -%}
        {{ column }}::{{ type }}
    {%- endif -%}
{%- endmacro %}
