"""Layer-norm kernel family: `native_layer_norm` and `native_layer_norm_backward`."""
