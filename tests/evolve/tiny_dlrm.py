"""A one-table DLRM-style model for command-line tests (`tests.evolve.tiny_dlrm:factory`)."""
from benchmarks.models.dlrm import DLRMConfig, build

TINY = DLRMConfig(num_tables=1, rows=50, dim=8, batch=4, pooling=3, dense_features=5, bottom=(8, 8), top=(8, 1))


def factory(device="cpu"):
    return build(TINY, device)
