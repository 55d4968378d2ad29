"""The 22 catch22 features: ``stat_c22_{name}``.

GPU: :mod:`python_jobs.gpu.catch22` computes five of the features batched on the device and
the other seventeen with pycatch22's single-feature functions on the host (its docstring says
which and why); the values are the same.
"""

from __future__ import annotations

import numpy as np
import pycatch22

from python_jobs.features._common import as_series, finite_or_nan, is_constant, nan_dict, usable
from python_jobs.features.registry import register

# pycatch22's names, in its output order (catch22_all(...)["names"]).
CATCH22_NAMES = (
    "DN_HistogramMode_5",
    "DN_HistogramMode_10",
    "DN_OutlierInclude_p_001_mdrmd",
    "DN_OutlierInclude_n_001_mdrmd",
    "CO_FirstCrossing_acf_1e_pointOfCrossing",
    "CO_FirstMin_ac",
    "SP_Summaries_fft_area_5_1",
    "SP_Summaries_fft_wq_50",
    "FC_LocalSimple_mean3_stde",
    "FC_LocalSimple_mean1_taurat",
    "MD_pNN_pnn40",
    "SB_BinaryStats_mean_longstretch1",
    "SB_BinaryStats_diff_longstretch0",
    "SB_MotifThree_quantile_hh",
    "CO_HistogramAMI_even_5bin_ami2",
    "CO_trev_1_num",
    "IN_AutoMutualInfoStats_40_gaussian_fmmi",
    "SB_TransitionMatrix_quantile_3_ac_sumdiagcov",
    "PD_PeriodicityWang_th0_01",
    "CO_Embed2_Dist_tau_d_expfit_meandiff",
    "SC_FluctAnal_2_rsrangefit_50_1_logi_prop_r1",
    "SC_FluctAnal_2_dfa_50_1_2_logi_prop_r1",
)
# Shorter series make several catch22 features (quantile motifs, fluctuation fits) meaningless.
MIN_LENGTH = 10


def catch22_outputs() -> list[str]:
    return [f"stat_c22_{name.lower()}" for name in CATCH22_NAMES]


def catch22(y) -> dict[str, float]:
    """The catch22 feature set of ``y``.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.

    Returns
    -------
    dict of str to float
        ``stat_c22_<name lower-cased>`` for the 22 features. All NaN for a series shorter
        than 10, holding a non-finite value, or constant (catch22 z-scores the series first,
        which is undefined at zero variance; pycatch22 then returns arbitrary numbers).

    Notes
    -----
    Reference: ``pycatch22.catch22_all(y)`` (values passed through unchanged). C. H. Lubba et
    al., "catch22: CAnonical Time-series CHaracteristics", Data Min. Knowl. Disc. 33 (2019),
    DOI 10.1007/s10618-019-00647-x.
    """
    arr = as_series(y)
    names = catch22_outputs()
    if not usable(arr, MIN_LENGTH) or is_constant(arr):
        return nan_dict(names)
    result = pycatch22.catch22_all(arr.tolist(), catch24=False)
    by_name = dict(zip(result["names"], result["values"], strict=True))
    return {out: finite_or_nan(by_name[name]) for out, name in zip(names, CATCH22_NAMES, strict=True)}


@register(
    "catch22",
    kind="stat",
    outputs=catch22_outputs(),
    libraries=("pycatch22",),
    cost="low",
    gpu="python_jobs.gpu.catch22:catch22_batch",
    reference="pycatch22.catch22_all",
    min_length=MIN_LENGTH,
)
def catch22_family(y: np.ndarray) -> dict[str, float]:
    return catch22(y)
