"""Dense matrix-multiply family: `mm` and `addmm` (nn.Linear's forward and the GEMMs of its backward)."""
