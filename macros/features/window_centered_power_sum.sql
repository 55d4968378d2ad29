{#-
    n^(p-1) times the p-th centred power sum of a window of n rows, sum((y - mean)^p), from its
    power sums S1 .. Sp: the binomial expansion sum over k of C(p, k) (-S1)^(p-k) n^(k-1) Sk
    (S0 = n). For integer-valued y the sums are integers and so is this, computed in numeric:
    exact, whatever the size of the powers (p = 2 gives n S2 - S1^2, y_var_n_w{w}).
    The sums are read from `relation` as y_sum_w{n}, y_sq_sum_w{n} and y_pow{k}_sum_w{n}.
    Usage: {{ window_centered_power_sum('row_stats', 30, 3) }} as cube_n_w30
-#}
{% macro window_centered_power_sum(relation, n, p) -%}
    {%- set sum_names = {1: 'y_sum_w', 2: 'y_sq_sum_w'} -%}
    {%- set first = relation ~ '.y_sum_w' ~ n ~ '::numeric' -%}
    {#- k = 0 and k = 1 together: (-1)^p (1 - p) S1^p. -#}
    {%- set terms = [((1 if p % 2 == 0 else -1) * (1 - p)) ~ ([''] + [first] * p) | join(' * ')] -%}
    {%- set binomial = namespace(value=p) -%}
    {%- for k in range(2, p + 1) -%}
        {%- set binomial.value = binomial.value * (p - k + 1) // k -%}
        {%- set power_sum = relation ~ '.' ~ sum_names.get(k, 'y_pow' ~ k ~ '_sum_w') ~ n ~ '::numeric' -%}
        {%- set coefficient = binomial.value * (1 if (p - k) % 2 == 0 else -1) * (n ** (k - 1)) -%}
        {%- do terms.append(coefficient ~ ([''] + [power_sum] + [first] * (p - k)) | join(' * ')) -%}
    {%- endfor -%}
    ({{ terms | join(' + ') }})
{%- endmacro %}
