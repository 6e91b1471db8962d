"""Factorization-machine interaction family: WuKong's X (Xᵀ Y), the pattern op `kevolve::fm_interaction` and its backward."""
