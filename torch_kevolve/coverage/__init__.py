"""The coverage suite: every overload a family claims, checked on OpInfo samples and random inputs."""
from .report import markdown_table, summary
from .run import OverloadResult, run_coverage
from .samples import Sample, opinfo_samples, random_samples

__all__ = ["OverloadResult", "Sample", "markdown_table", "opinfo_samples", "random_samples", "run_coverage", "summary"]
