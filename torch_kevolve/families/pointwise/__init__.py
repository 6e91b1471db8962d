"""The pointwise family: elementwise ATen overloads whose Triton kernels are generated from one table."""
from .family import POINTWISE

__all__ = ["POINTWISE"]
