"""Pattern ops: semantic `kevolve::` custom ops that stand for multi-node ATen patterns (e.g. the DLRM dot
interaction), the pre-grad pass that finds those patterns, and each op's plain-ATen meaning."""
from .matcher import PATTERNS, Pattern, rewrite_patterns
from .ops import INNER_CALLS, MEANINGS, STANDS_FOR, is_pattern_op, meaning

__all__ = ["INNER_CALLS", "MEANINGS", "PATTERNS", "Pattern", "STANDS_FOR", "is_pattern_op", "meaning", "rewrite_patterns"]
