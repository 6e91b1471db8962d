"""Group-norm kernel family: `native_group_norm` and `native_group_norm_backward`."""
