"""The landscape of thresholds for real noiseless phase retrieval with Gaussian inputs (the picture of
Zdeborová's lectures, "Insights on gradient-based algorithms in high-dimensional non-convex
optimisation"): each threshold with its value and how prcy obtained it."""
from prcy.analysis.theory import alpha_amp, alpha_weak_recovery
from prcy.analysis.threshold_states import alpha_bbp

INFORMATION_THEORETIC = 1.0   # Barbier et al., PNAS 2019 (perfect recovery possible iff alpha > 1)


def theory_thresholds(include_bbp: bool = True) -> list[dict]:
    """Rows ``{"name", "symbol", "alpha", "how"}`` in increasing ``alpha``. ``include_bbp`` solves the
    1RSB threshold states (a few seconds); the others take milliseconds."""
    rows = [
        {"name": "weak recovery", "symbol": "alpha_WR", "alpha": alpha_weak_recovery(),
         "how": "closed form: linear instability of the AMP state evolution at m = 0"},
        {"name": "information-theoretic", "symbol": "alpha_IT", "alpha": INFORMATION_THEORETIC,
         "how": "literature (Barbier et al. 2019): not computed by prcy"},
        {"name": "AMP (Bayes-optimal)", "symbol": "alpha_AMP", "alpha": alpha_amp(),
         "how": "computed: extremum of the state-evolution fixed-point curve alpha(m)"},
    ]
    if include_bbp:
        rows.append({"name": "BBP of threshold states (gradient flow, random start)", "symbol": "alpha_BBP",
                     "alpha": alpha_bbp(),
                     "how": "computed: 1RSB threshold states (Sarao Mannelli et al. 2020, eqs 11-13, 17) and "
                            "the BBP condition (eqs 5-7)"})
    return sorted(rows, key=lambda r: r["alpha"])
