"""Models the benchmarks and `kevolve explain` run: each module has factories `(device) -> (model, inputs)`."""
