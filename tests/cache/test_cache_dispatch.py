import json
import logging
import sqlite3

import pytest

from torch_kevolve.cache import Dispatcher, ShippedStore, UserStore, export_records
from torch_kevolve.cache.record import TIE_FITNESS


@pytest.fixture
def user(tmp_path):
    return UserStore(tmp_path / "user")


def shipped(tmp_path, records) -> ShippedStore:
    export_records(records, tmp_path / "shipped" / "kernels.json")
    return ShippedStore(tmp_path / "shipped")


def kevolve_logs(caplog):
    return [r for r in caplog.records if r.name == "torch_kevolve"]


def test_winner_from_the_user_store(user, family, make_record, make_key):
    record = make_record(fitness=2.0)
    user.put(record)
    choice = Dispatcher(user, None, families=[family]).choose(make_key())
    assert choice and choice.record == record
    assert "fitness 2.00" in choice.reason and "user cache" in choice.reason


def test_user_store_first_then_shipped(tmp_path, user, family, make_record, make_key):
    ship = shipped(tmp_path, [make_record(8, fitness=3.0), make_record(16, fitness=3.0)])
    user.put(make_record(8, fitness=1.5))
    dispatcher = Dispatcher(user, ship, families=[family])
    assert dispatcher.choose(make_key(8)).record.fitness == pytest.approx(1.5)
    assert "shipped cache" in dispatcher.choose(make_key(16)).reason


def test_no_record(user, family, make_key):
    choice = Dispatcher(user, None, families=[family]).choose(make_key())
    assert choice.record is None and choice.reason == "no cached kernel for this key"


def tamper(user: UserStore, record) -> None:
    """Edit the stored source behind the store's back, as a person or a bad tool might."""
    tampered = json.dumps({**record.to_dict(), "source": record.source + "import os\n"})
    with sqlite3.connect(user.path) as db:
        db.execute("UPDATE records SET record = ?", (tampered,))


def test_tampered_source_refused_with_one_warning(tmp_path, user, family, make_record, make_key, caplog):
    record = make_record()
    user.put(record)
    tamper(user, record)
    dispatcher = Dispatcher(user, None, families=[family])
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        choices = [dispatcher.choose(make_key()) for _ in range(2)]
    assert all(c.record is None and "source hash mismatch (tampered?)" in c.reason for c in choices)
    [line] = kevolve_logs(caplog)
    assert line.levelno == logging.WARNING and "tampered" in line.getMessage()


def test_tampered_user_record_falls_back_to_shipped(tmp_path, user, family, make_record, make_key):
    user.put(make_record(fitness=5.0))
    tamper(user, make_record(fitness=5.0))
    record = make_record(fitness=3.0)
    assert Dispatcher(user, shipped(tmp_path, [record]), families=[family]).choose(make_key()).record == record


def test_stale_kernel_source_refused(user, family, kernel_module, make_record, make_key, caplog):
    user.put(make_record())
    kernel_module.write_text(kernel_module.read_text() + "\n\ndef faster(x):\n    return x\n")
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        choice = Dispatcher(user, None, families=[family]).choose(make_key())
    assert choice.record is None and "stale: kernel source changed since it was measured" in choice.reason
    [line] = kevolve_logs(caplog)
    assert line.levelno == logging.INFO


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"torch_version": "1.0.0"}, "measured with torch 1.0.0"),
        ({"triton_version": "0.1"}, "measured with triton 0.1"),
        ({"family_version": "0"}, "stale: family fake is version 1"),
        ({"implementation": "gone"}, "no implementation 'gone'"),
        ({"genome": {"BLOCK": 7}}, "genome no longer valid"),
    ],
)
def test_mismatched_record_refused_with_info(user, family, make_record, make_key, caplog, fields, reason):
    user.put(make_record(**fields))
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        choice = Dispatcher(user, None, families=[family]).choose(make_key())
    assert choice.record is None and reason in choice.reason
    [line] = kevolve_logs(caplog)
    assert line.levelno == logging.INFO


def test_unknown_family_refused(user, family, make_record, make_key):
    user.put(make_record())
    choice = Dispatcher(user, None, families=[]).choose(make_key())
    assert choice.record is None and "no kernel family 'fake'" in choice.reason


def test_inductor_faster_means_no_kernel(user, family, make_record, make_key, caplog):
    user.put(make_record(fitness=0.83))
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        choice = Dispatcher(user, None, families=[family]).choose(make_key())
    assert choice.record is None and "Inductor faster (fitness 0.830" in choice.reason
    assert not kevolve_logs(caplog)


@pytest.mark.parametrize("fitness", [1.001, 1.02, TIE_FITNESS])
def test_a_tie_means_no_kernel(user, family, make_record, make_key, caplog, fitness):
    """A record faster than Inductor by no more than measuring again moves the fitness leaves its key to Inductor,
    without a warning."""
    tie = make_record(fitness=fitness)
    user.put(tie)
    assert not tie.wins and make_record(fitness=TIE_FITNESS + 0.001).wins
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        choice = Dispatcher(user, None, families=[family]).choose(make_key())
    assert choice.record is None and f"a tie with Inductor (fitness {fitness:.3f}" in choice.reason
    assert not kevolve_logs(caplog)


def test_a_tie_in_the_user_cache_leaves_the_shipped_winner(tmp_path, user, family, make_record, make_key):
    winner = make_record(fitness=1.5)
    user.put(make_record(fitness=1.01))
    assert Dispatcher(user, shipped(tmp_path, [winner]), families=[family]).choose(make_key()).record == winner


def test_corrupt_user_store_is_skipped_with_one_warning(tmp_path, user, family, make_record, make_key, caplog):
    user.directory.mkdir()
    user.path.write_bytes(b"\x00garbage" * 512)
    record = make_record(8)
    dispatcher = Dispatcher(user, shipped(tmp_path, [record]), families=[family])
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        missing = dispatcher.choose(make_key(16))
        found = dispatcher.choose(make_key(8))
    assert missing.record is None and "user cache unavailable" in missing.reason and "purge" in missing.reason
    assert found.record == record
    [line] = kevolve_logs(caplog)
    assert line.levelno == logging.WARNING and str(user.path) in line.getMessage()


def test_no_stores(family, make_key):
    assert Dispatcher(None, None, families=[family]).choose(make_key()).reason == "no cached kernel for this key"


def test_winners_like_a_key_come_largest_first_over_both_stores(tmp_path, user, family, make_record, make_key):
    """For a call whose dim n varies: every trusted winner of a key that differs in n alone, largest n first; a
    key where Inductor measured faster has none."""
    ship = shipped(tmp_path, [make_record(16, fitness=3.0)])
    user.put(make_record(8, fitness=1.5))
    user.put(make_record(4096, fitness=0.9))
    dispatcher = Dispatcher(user, ship, families=[family])
    winners = list(dispatcher.winners_like(make_key(8), frozenset({"n"})))
    assert [(c.record.key, c.record.fitness) for c in winners] == [(make_key(16), 3.0), (make_key(8), 1.5)]
    assert "shipped cache" in winners[0].reason
    assert [c.record for c in dispatcher.winners_like(make_key(8), frozenset())] == [user.get(make_key(8))]
