"""torch_kevolve: `torch.compile(model, backend="kevolve")` with evolved kernels where they beat Inductor."""

__version__ = "0.1.0"
