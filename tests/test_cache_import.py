"""`kevolve cache import`: records enter the user cache only after hash, version, device and correctness checks."""
import dataclasses
import json
import re

import torch

from torch_kevolve.cache import KernelRecord, ShippedStore, UserStore, export_records, torch_version, triton_version
from torch_kevolve.cache_import import import_records
from torch_kevolve.cli import main
from torch_kevolve.evolve.evaluation import EvaluationResult, Status
from torch_kevolve.evolve.evaluator import EvaluatorConfig
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo, OpKey


def cpu_record(rows=40):
    args = (torch.randn(rows, 8), torch.randint(0, rows, (24,)), torch.arange(0, 24, 4))
    problem = EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag.default, args, {})
    impl = EMBEDDING_BAG.implementation("embedding_bag_decomposition")
    return KernelRecord.measured(OpKey.of(problem, DeviceInfo.of("cpu")), EMBEDDING_BAG, impl,
                                 impl.genomes(problem)[0], t_ref_us=20.0, t_cand_us=10.0)


def test_import_checks_each_record_and_keeps_the_sound_ones(tmp_path, capsys):
    good = cpu_record()
    tampered = dataclasses.replace(cpu_record(rows=300), source=cpu_record().source + "\n# edited")
    h100 = ShippedStore().records()[0]  # versions made current, so the device is what differs
    foreign = dataclasses.replace(h100, torch_version=torch_version(), triton_version=triton_version())
    export_records([good, tampered, foreign], tmp_path / "in.json")
    cache = tmp_path / "cache"
    assert main(["cache", "--cache-dir", str(cache), "import", str(tmp_path / "in.json"), "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert [r.key for r in UserStore(cache).records()] == [good.key]
    assert "source hash mismatch" in out and f"measured on {foreign.key.device}" in out
    assert "imported 1 records, refused 2" in out
    assert re.search(rf"imported {good.key.digest} .* \(\d+ s\)", out)  # what each check cost, to plan GPU time


class FailingJudge:
    config = EvaluatorConfig(device="cpu")

    def evaluate(self, candidate):
        return EvaluationResult(Status.PARTIAL_WRITE, "4 elements still hold the poison")


def test_a_kernel_that_fails_its_correctness_run_is_refused(tmp_path):
    export_records([cpu_record()], tmp_path / "in.json")
    said = []
    store = UserStore(tmp_path / "cache")
    assert import_records(tmp_path / "in.json", store, FailingJudge(), said.append) == (0, 1)
    assert store.records() == [] and "partial_write" in said[0]


def test_a_malformed_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "in.json").write_text(json.dumps({"format": 1, "records": [{"key": 3}]}))
    assert main(["cache", "--cache-dir", str(tmp_path), "import", str(tmp_path / "in.json"), "--device", "cpu"]) == 1
    assert "in.json" in capsys.readouterr().err
