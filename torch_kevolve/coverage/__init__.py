"""The coverage suite: every overload a family claims, checked on OpInfo samples and random inputs."""
from .report import json_report, markdown_table, summary
from .run import OverloadResult, run_coverage
from .samples import Sample, opinfo_samples, random_samples

__all__ = ["OverloadResult", "Sample", "json_report", "markdown_table", "opinfo_samples", "random_samples", "run_coverage", "summary"]
