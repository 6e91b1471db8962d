"""Reduction kernel family: sum, mean, prod, extremes, arg-extremes, var/std, norms, logsumexp, any/all."""
