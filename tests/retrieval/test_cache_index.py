"""The retrieval index over the kernel cache: the shipped index matches the shipped cache; `kevolve cache near`."""
import torch

from torch_kevolve.cache import KernelRecord, ShippedStore, UserStore
from torch_kevolve.cli import main
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo, OpKey
from torch_kevolve.neighbours import SHIPPED_INDEX_DIR, cache_index, user_index_dir
from torch_kevolve.retrieval import KeyIndex, KeyVectorizer


def test_the_shipped_index_holds_exactly_the_shipped_cache_keys():
    """Fails when kernel_cache/ changes without `kevolve index build-shipped`."""
    index = KeyIndex.load(SHIPPED_INDEX_DIR, KeyVectorizer())
    shipped = ShippedStore().records()
    assert sorted(k.id for k in index.keys()) == sorted(r.key.id for r in shipped)


def _record(rows, dim, indices):
    args = (torch.randn(rows, dim), torch.randint(0, rows, (indices,)), torch.arange(0, indices, 4))
    problem = EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag.default, args, {})
    impl = EMBEDDING_BAG.implementation("embedding_bag_decomposition")
    return KernelRecord.measured(OpKey.of(problem, DeviceInfo.of("cpu")), EMBEDDING_BAG, impl,
                                 impl.genomes(problem)[0], t_ref_us=20.0, t_cand_us=10.0)


def test_cache_near_lists_the_nearest_keys_and_keeps_the_user_index(tmp_path, capsys):
    store = UserStore(tmp_path)
    near, far, target = _record(1000, 16, 400), _record(64, 128, 8), _record(1100, 16, 400)
    for record in (near, far, target):
        store.put(record)
    assert main(["cache", "--cache-dir", str(tmp_path), "near", target.key.digest[:10], "-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"neighbours of {target.key.digest}")
    assert near.key.digest in out[1]
    saved = KeyIndex.load(user_index_dir(tmp_path), KeyVectorizer())
    assert {r.key.id for r in (near, far, target)} <= {k.id for k in saved.keys()}
    assert main(["cache", "--cache-dir", str(tmp_path), "near", "ffffffffff"]) == 1


def test_an_empty_user_cache_reads_the_shipped_index_without_writing(tmp_path):
    index = cache_index(UserStore(tmp_path), ShippedStore())
    assert len(index) == len(ShippedStore().records())
    assert not user_index_dir(tmp_path).exists()
