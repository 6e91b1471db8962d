"""The README's commands are what CI and users run."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_main_command_runs_the_benchmark_entry_point():
    main_command = readme_commands()[0]
    assert "pip install ." in main_command
    module = re.search(r"python -m (\S+) (\S+)", main_command)
    assert module is not None
    import benchmarks.run

    assert module.group(1) == "benchmarks.run" and module.group(2) in benchmarks.run.BENCHMARKS
