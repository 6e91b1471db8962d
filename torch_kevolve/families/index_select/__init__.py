"""Row-gather kernel family: `index_select`, `embedding` and the dense embedding gradient."""
