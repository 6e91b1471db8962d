"""Interaction kernel family: the pattern ops of DLRM's dot interaction, `kevolve::pairwise_dots` and its backward."""
