{#-
    Pearson correlation from n-scaled centred sums: cov_n = n Sxy - Sx Sy, var_x_n = n Sxx - Sx^2,
    var_y_n = n Syy - Sy^2. With integer-valued data these are exact integers, so a constant
    side gives exactly 0 and the result is NULL there (pandas gives NaN), never a huge ratio
    of rounding noise.
    Usage: {{ pearson_from_centered_sums('cov_n', 'var_y_n', 'var_co_n') }} as hist_y_co_corr_w30
-#}
{% macro pearson_from_centered_sums(cov_n, var_x_n, var_y_n) -%}
    case
        when ({{ var_x_n }}) > 0 and ({{ var_y_n }}) > 0
            then ({{ cov_n }}) / sqrt(({{ var_x_n }}) * ({{ var_y_n }}))
    end
{%- endmacro %}
