"""benchmarks.tune_candidates: chosen genomes parsed from IMPLEMENTATION=GENOME_JSON, bad ones refused with the
reason, and a CPU run that evaluates only the chosen candidate and stores it in the user cache."""
import json

import pytest

from benchmarks import tune_candidates
from torch_kevolve.cache import UserStore


def test_candidates_parse_by_implementation_and_bad_ones_say_why():
    chosen = tune_candidates.chosen_genomes(['a={"X": 1}', 'b={"Y": 2}', 'a={"X": 3}'])
    assert chosen == {"a": [{"X": 1}, {"X": 3}], "b": [{"Y": 2}]}
    with pytest.raises(ValueError, match="not JSON"):
        tune_candidates.chosen_genomes(["a={X: 1}"])
    with pytest.raises(ValueError, match="IMPLEMENTATION="):
        tune_candidates.chosen_genomes(["a"])
    with pytest.raises(SystemExit):
        tune_candidates.main(["dlrm_tiny", "embedding_bags_backward", 'nonesuch={"X": 1}', "--device", "cpu"])


def test_only_the_chosen_candidate_is_evaluated_and_stored(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path))
    genome = {"method": "stacked"}
    assert tune_candidates.main(["dlrm_tiny", "embedding_bags_backward",
                                 f"embedding_bags_backward_decomposition={json.dumps(genome)}", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.count("embedding_bags_backward_decomposition {") == 2 and "stored" in out  # one evaluation, the best
    records = list(UserStore(tmp_path).records())
    assert [(r.implementation, r.genome, r.stats["method"]) for r in records] == [
        ("embedding_bags_backward_decomposition", genome, "chosen")]


def test_keys_limits_the_tune_to_the_keys_it_matches(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path))
    tuned = []
    monkeypatch.setattr(tune_candidates, "tune", lambda family, problem, *args, **kwargs: tuned.append(problem)
                        or (None, None))
    candidate = 'embedding_bags_backward_decomposition={"method": "stacked"}'
    assert tune_candidates.main(["dlrm_tiny", "embedding_bags_backward", candidate, "--device", "cpu",
                                 "--keys", "nonesuch"]) == 1
    assert "no key of embedding_bags_backward that matches 'nonesuch'" in capsys.readouterr().out and not tuned
    tune_candidates.main(["dlrm_tiny", "embedding_bags_backward", candidate, "--device", "cpu", "--keys",
                          r"tables=3\]"])
    assert [p.param("tables") for p in tuned] == [3]


def test_check_model_hands_the_stored_records_to_the_model_check(tmp_path, monkeypatch):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path))
    checked = []
    monkeypatch.setattr(tune_candidates, "keep_what_helps",
                        lambda model, inputs, device, records, store: checked.extend(records) or [])
    assert tune_candidates.main(["dlrm_tiny", "embedding_bags_backward",
                                 'embedding_bags_backward_decomposition={"method": "stacked"}', "--device", "cpu",
                                 "--check-model"]) == 1  # the check kept nothing
    assert [r.implementation for r in checked] == ["embedding_bags_backward_decomposition"]


def test_a_preprocessing_module_at_a_batch_size_stands_for_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path))
    genome = {"BUCKET_BITS": 10}
    assert tune_candidates.main(["map_id@64", "map_id", f"map_id_decomposition={json.dumps(genome)}",
                                 "--device", "cpu"]) == 0
    [record] = UserStore(tmp_path).records()
    assert (record.key.op, record.implementation, record.genome) == ("kevolve.map_id.default", "map_id_decomposition",
                                                                     genome)
    assert dict(record.key.shape)["ids"] == 64 * 8  # map_id's 8 ids per sample
    for name in ("nonesuch@64", "map_id@many", "nonesuch"):
        with pytest.raises(ValueError, match="MODULE@BATCH"):
            tune_candidates.model_and_inputs(name, "cpu")
