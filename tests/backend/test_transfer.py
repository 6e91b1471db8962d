"""Compile-time transfer (option `transfer`): a near solved key's winner is used on a cache miss, checked on
the new key first; off by default, and never beyond `transfer_distance`."""
import dataclasses

import pytest

from benchmarks.models.dlrm import build
from tests.backend.test_end_to_end import TINY, _decomposition_records, run_against_eager
from torch_kevolve.backend.options import KevolveOptions

NEAR = dataclasses.replace(TINY, rows=100)  # tables of 100 rows: the next shape bucket from TINY's 40 (64 -> 128)


def test_a_near_winner_is_transferred_and_checked(tmp_path):
    _decomposition_records(tmp_path, fitness=2.0)  # winners for TINY's keys
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False, "transfer": True}, NEAR)
    transferred = [d for d in decisions if d.claimed and d.reason.startswith("transferred from")]
    assert transferred and all("checked on this key" in d.reason for d in transferred)
    assert {d.family for d in transferred} >= {"embedding_bag"}


def test_transfer_is_off_by_default(tmp_path):
    _decomposition_records(tmp_path, fitness=2.0)
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False}, NEAR)
    assert not any(d.claimed and d.family == "embedding_bag" for d in decisions)


def test_no_transfer_beyond_the_distance(tmp_path):
    _decomposition_records(tmp_path, fitness=2.0)
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False, "transfer": True,
                                   "transfer_distance": 1e-12}, NEAR)
    assert not any(d.claimed and d.family == "embedding_bag" for d in decisions)


def test_inductor_wins_records_are_not_donors(tmp_path):
    _decomposition_records(tmp_path, fitness=0.5)
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False, "transfer": True}, NEAR)
    assert not any(d.claimed for d in decisions)


@pytest.mark.parametrize("bad", [0, -1.0, 3.0, True, "0.1"])
def test_transfer_distance_is_validated(bad):
    with pytest.raises(ValueError, match="transfer_distance"):
        KevolveOptions.from_user({"transfer_distance": bad})


def test_near_config_poses_keys_the_cache_lacks(tmp_path):
    from torch_kevolve.warm import model_problems

    def embedding_keys(config):
        problems = model_problems(*build(config, "cpu"), {"cache_dir": str(tmp_path)})
        return {key for key, (family, _) in problems.items() if family.startswith("embedding_bag")}

    assert embedding_keys(NEAR) and not embedding_keys(NEAR) & embedding_keys(TINY)
