"""Analysis: generalization-error formulas and summaries over prcy datasets (pure functions)."""
from prcy.analysis.generalization import (label_mse, linear_mse, test_error, three_cluster_error,
                                         two_cluster_error)
from prcy.analysis.success import success_summary, wilson_interval

__all__ = ["label_mse", "linear_mse", "test_error", "success_summary", "wilson_interval",
           "two_cluster_error", "three_cluster_error"]
