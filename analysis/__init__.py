"""Analysis: generalization-error formulas and summaries over prcy datasets (pure functions)."""
from prcy.analysis.generalization import (a_distance, door_error, label_mse, linear_mse, quadratic_network_error,
                                         test_error, three_cluster_error, two_cluster_error)
from prcy.analysis import theory, threshold_states
from prcy.analysis.linear_ridge import linear_ridge_dynamics, marchenko_pastur
from prcy.analysis.mixtures import (bayes_optimal_two_cluster_error, oracle_three_cluster_error,
                                    oracle_three_cluster_onset, ridge_logistic_two_cluster)
from prcy.analysis.replicas import replica_summary
from prcy.analysis.success import format_summary_row, success_summary, wilson_interval
from prcy.analysis.thresholds import curve_bands, success_curve, threshold, threshold_table
from prcy.analysis.threshold_states import alpha_bbp, threshold_energy, threshold_state
from prcy.analysis.theory import (ConvergenceError, alpha_amp, alpha_weak_recovery, se_alpha_of_overlap,
                                 se_fixed_point, se_iterate)

__all__ = ["a_distance", "quadratic_network_error", "door_error", "label_mse", "linear_mse", "test_error", "success_summary", "format_summary_row", "wilson_interval",
           "two_cluster_error", "three_cluster_error", "theory", "ConvergenceError", "alpha_amp",
           "alpha_weak_recovery", "se_alpha_of_overlap", "se_fixed_point", "se_iterate", "threshold_states",
           "alpha_bbp", "threshold_energy", "threshold_state",
           "curve_bands", "success_curve", "threshold", "threshold_table", "linear_ridge_dynamics",
           "marchenko_pastur", "replica_summary", "bayes_optimal_two_cluster_error", "oracle_three_cluster_error",
           "oracle_three_cluster_onset", "ridge_logistic_two_cluster"]
