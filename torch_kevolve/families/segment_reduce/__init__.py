"""Segment-reduce kernel family: `segment_reduce` (sum, mean, max, min along axis 0) and its gradient `_segment_reduce_backward`."""
