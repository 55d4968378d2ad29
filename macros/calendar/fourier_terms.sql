{#-
    Fourier terms of a day index t (an integer, or an exact numeric with the time of day as a
    fraction): for every period P in var('fourier_periods') and order K in
    var('fourier_orders'), `<prefix>_p{P}_k{K}_sin/_cos` = sin/cos(2 pi K t / P).
    K t is reduced modulo P exactly first (integer or numeric arithmetic), so the terms are
    exactly periodic and keep full precision however far t is from the epoch.
    Usage: {{ fourier_terms(days_since_epoch('ds'), 'futr') }},
-#}
{% macro fourier_terms(t_expr, prefix) -%}
    {%- set terms = [] -%}
    {%- for period in var('fourier_periods') -%}
        {%- for order in var('fourier_orders') -%}
            {%- set phase = 'mod(' ~ order ~ ' * ' ~ t_expr ~ ', ' ~ period ~ ')' -%}
            {%- do terms.append(cyclical_encoding(phase, period, prefix ~ '_p' ~ period ~ '_k' ~ order)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ terms | join(',\n        ') }}
{%- endmacro %}
