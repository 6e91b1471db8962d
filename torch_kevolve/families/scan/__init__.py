"""Scan kernel family: cumulative sums and products along a dim (`cumsum`, `cumprod`)."""
