"""The kernel cache: records of measured kernels, the user and shipped stores, and dispatch."""
from .dispatch import Choice, Dispatcher
from .errors import CacheError
from .record import KernelRecord, torch_version, triton_version
from .shipped import ShippedStore, export_records, read_records
from .store import UserStore, default_cache_dir

__all__ = [
    "CacheError",
    "Choice",
    "Dispatcher",
    "KernelRecord",
    "ShippedStore",
    "UserStore",
    "default_cache_dir",
    "export_records",
    "read_records",
    "torch_version",
    "triton_version",
]
