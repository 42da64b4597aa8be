"""HealingDataset items and loaders: shapes, masks from (seed, epoch, index), workers, samplers, fixed tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from conftest import make_sketch
from sketchheal.data.dataset import HealingDataset, make_loader
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import corrupt
from sketchheal.sketch.strokes import to_stroke5


class DuckSet:
    """The SketchSet contract, minimal: packed points + offsets, labels, len, [i] -> float32 stroke-3."""

    def __init__(self, sketches: list[np.ndarray], labels: list[int]):
        self.offsets = np.concatenate([[0], np.cumsum([len(s) for s in sketches])]).astype(np.int64)
        self.points = np.concatenate(sketches).astype(np.int16)
        self.labels = np.asarray(labels, np.int16)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.points[self.offsets[i]:self.offsets[i + 1]].astype(np.float32)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


@pytest.fixture(scope="module")
def duck() -> DuckSet:
    rng = np.random.default_rng(0)
    sketches = [make_sketch(rng, n_strokes=int(rng.integers(2, 5)), points=int(rng.integers(4, 10)))
                for _ in range(40)]
    return DuckSet(sketches, labels=[k % 3 for k in range(40)])


def _ds(source, **kw) -> HealingDataset:
    args = dict(scale=10.0, max_len=64, image_size=32, render_mode="fast", mask_prob=0.5, seed=3)
    args.update(kw)
    return HealingDataset(source, **args)


def _stack(loader) -> dict[str, torch.Tensor]:
    batches = list(loader)
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


# ----------------------------------------------------------------------------------------------------- items


def test_item_shapes_dtypes_ranges(duck):
    ds = _ds(duck)
    item = ds[5]
    assert item["corrupted"].shape == item["clean"].shape == (1, 32, 32)
    assert item["corrupted"].dtype == item["clean"].dtype == torch.float32
    assert item["strokes"].shape == (65, 5) and item["strokes"].dtype == torch.float32
    for k in ("length", "label", "index"):
        assert item[k].dtype == torch.int64 and item[k].shape == ()
    assert item["length"] == len(duck[5]) and item["label"] == 2 and item["index"] == 5
    assert item["clean"].min() >= -1 and item["clean"].max() == 1
    assert (item["corrupted"] <= item["clean"]).all()
    want = to_stroke5(duck[5] / np.array([10.0, 10.0, 1.0], np.float32), 64)
    np.testing.assert_allclose(item["strokes"].numpy(), want, rtol=1e-6)
    assert ds[-1]["index"] == 39
    with pytest.raises(IndexError):
        ds[40]


def test_target_size_resizes_the_targets_not_the_images(duck):
    from sketchheal.sketch.strokes import longer_side, stroke5_to_stroke3

    plain, sized = _ds(duck), _ds(duck, target_size=255.0)
    for i in (0, 7, 39):
        a, b = plain[i], sized[i]
        torch.testing.assert_close(a["corrupted"], b["corrupted"])  # the image does not depend on the size
        s3 = stroke5_to_stroke3(b["strokes"].numpy())
        assert len(s3) == len(duck[i])
        assert longer_side(s3) * 10.0 == pytest.approx(255.0, rel=1e-4)  # x scale 10 = a 255-unit sketch
    with pytest.raises(ValueError, match="target_size"):
        _ds(duck, target_size=-1.0)


def test_deformed_inputs_and_mask_ranges_keep_the_target(duck):
    plain = _ds(duck, mask_prob=0.1)
    aug = _ds(duck, mask_prob=0.1, mask_prob_max=0.6, deform=(10.0, 0.15, 0.005))
    changed = 0
    for i in range(10):
        a, b = plain[i], aug[i]
        torch.testing.assert_close(a["strokes"], b["strokes"])  # the target is the sketch as drawn
        changed += int(not torch.equal(a["clean"], b["clean"]))  # the image comes from a deformed copy
        assert (b["corrupted"] <= b["clean"]).all()  # the clean image is the deformed sketch, unmasked
    assert changed >= 8
    again = _ds(duck, mask_prob=0.1, mask_prob_max=0.6, deform=(10.0, 0.15, 0.005))
    torch.testing.assert_close(aug[3]["corrupted"], again[3]["corrupted"])  # reproducible from (seed, epoch, i)
    aug.set_epoch(1)
    assert not torch.equal(aug[3]["clean"], again[3]["clean"])  # and new every epoch
    # the range changes how much is erased, not which candidates come first: p ~ U(0.1, 0.6)
    only_range = _ds(duck, mask_prob=0.1, mask_prob_max=0.6)
    torch.testing.assert_close(only_range[0]["clean"], plain[0]["clean"])
    with pytest.raises(ValueError, match="mask_prob_max"):
        _ds(duck, mask_prob=0.3, mask_prob_max=0.2)
    with pytest.raises(ValueError, match="deform"):
        _ds(duck, deform=(5.0, 1.5, 0.0))
    with pytest.raises(ValueError, match="mask_table"):
        _ds(duck, deform=(5.0, 0.1, 0.0), mask_table=MaskTable(len(duck), 0))


def test_deformed_items_match_across_workers(duck):
    ds = _ds(duck, mask_prob_max=0.5, deform=(10.0, 0.1, 0.005))
    ds.set_epoch(2)
    one = _stack(make_loader(ds, 8, shuffle=False, num_workers=0, seed=0, drop_last=False))
    two = _stack(make_loader(ds, 8, shuffle=False, num_workers=2, seed=0, drop_last=False))
    torch.testing.assert_close(one["corrupted"], two["corrupted"])


def test_loaders_with_workers_make_opencv_fork_safe(duck):
    # OpenCV's pool threads do not survive fork (a worker could hang in cv2.setNumThreads): with workers, the
    # parent's OpenCV goes single-threaded, which joins its pool threads before any worker is forked
    import cv2

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        make_loader(_ds(duck), 8, shuffle=False, num_workers=0, seed=0, drop_last=False)
        assert cv2.getNumThreads() == 2  # no workers: left alone
        make_loader(_ds(duck), 8, shuffle=False, num_workers=1, seed=0, drop_last=False)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_item_matches_corrupt_with_its_uniforms(duck):
    ds = _ds(duck, render_mode="reference", image_size=64)
    ds.set_epoch(4)
    u = np.random.default_rng([3, 4, 7]).random(20)
    np.testing.assert_array_equal(ds.uniforms(7), u)
    c = corrupt(duck[7], u, 0.5, size=64, mode="reference")
    np.testing.assert_array_equal(ds[7]["corrupted"][0].numpy(), c.corrupted)
    np.testing.assert_array_equal(ds[7]["clean"][0].numpy(), c.clean)


def test_point_erase_items_match_corrupt_with_points(duck):
    ds = _ds(duck, render_mode="reference", image_size=64, point_erase=1.0)
    ds.set_epoch(2)
    c = corrupt(duck[5], ds.uniforms(5), 0.5, size=64, mode="reference", erasure="points")
    np.testing.assert_array_equal(ds[5]["corrupted"][0].numpy(), c.corrupted)
    half = _ds(duck, point_erase=0.5)
    kinds = [np.array_equal(half[i]["corrupted"][0].numpy(),
                            corrupt(duck[i], half.uniforms(i), 0.5, size=32, mode="fast").corrupted)
             for i in range(len(duck))]
    assert 0 < sum(kinds) < len(duck)  # some items erased as pixels, some as points
    with pytest.raises(ValueError, match="point_erase"):
        _ds(duck, point_erase=1.5)


def test_default_collate_batches(duck):
    batch = next(iter(make_loader(_ds(duck), 8, shuffle=False, num_workers=0, seed=0, drop_last=False)))
    assert batch["corrupted"].shape == (8, 1, 32, 32) and batch["strokes"].shape == (8, 65, 5)
    assert batch["index"].tolist() == list(range(8))


def test_list_of_arrays_is_packed():
    rng = np.random.default_rng(1)
    sketches = [make_sketch(rng) for _ in range(5)]
    ds = _ds(sketches)
    assert not isinstance(ds.sketches, list)  # packed into arrays: no per-sketch Python objects in workers
    np.testing.assert_array_equal(ds.sketches[3], sketches[3])
    assert ds[3]["label"] == 0


def test_real_sheep(sheep_npz):
    data = pytest.importorskip("sketchheal.sketch.io")
    sheep = data.load_sketches([sheep_npz], split="valid", max_seq_len=250)
    ds = HealingDataset(sheep, scale=data.compute_scale(sheep), max_len=250, mask_prob=0.3)
    item = ds[0]
    assert item["corrupted"].shape == (1, 128, 128) and item["strokes"].shape == (251, 5)
    assert int(item["length"]) == len(sheep[0])
    np.testing.assert_array_equal(item["clean"][0].numpy(), corrupt(sheep[0], np.ones(20), 0.0).clean)


# ----------------------------------------------------------------------------------------------------- masks


def test_masks_reproducible_and_change_with_epoch(duck):
    a, b = _ds(duck), _ds(duck)
    for i in (0, 9, 21):
        assert torch.equal(a[i]["corrupted"], b[i]["corrupted"])
    epoch0 = [a[i]["corrupted"] for i in range(len(a))]
    a.set_epoch(1)
    assert a.epoch == 1
    epoch1 = [a[i]["corrupted"] for i in range(len(a))]
    assert sum(not torch.equal(x, y) for x, y in zip(epoch0, epoch1)) >= 10
    a.set_epoch(0)
    assert all(torch.equal(a[i]["corrupted"], epoch0[i]) for i in range(len(a)))
    c = _ds(duck, seed=4)
    assert any(not torch.equal(c[i]["corrupted"], epoch0[i]) for i in range(len(a)))


def test_masks_identical_with_and_without_workers_across_epochs(duck):
    ref = _ds(duck)
    expected = []
    for e in (0, 1):
        ref.set_epoch(e)
        expected.append(_stack(make_loader(ref, 8, shuffle=False, num_workers=0, seed=0, drop_last=False)))
    ds = _ds(duck)
    loader = make_loader(ds, 8, shuffle=False, num_workers=2, seed=0, drop_last=False)
    assert loader.persistent_workers
    for e in (0, 1):
        ds.set_epoch(e)  # reaches the workers that are already running
        got = _stack(loader)
        for k in expected[e]:
            assert torch.equal(got[k], expected[e][k]), (e, k)
    assert not torch.equal(expected[0]["corrupted"], expected[1]["corrupted"])


def test_mask_table_gives_fixed_nested_masks(duck):
    table = MaskTable(len(duck), seed=9)
    d10 = _ds(duck, mask_table=table, mask_prob=0.1)
    d30 = _ds(duck, mask_table=table, mask_prob=0.3)
    d10.set_epoch(5)  # the epoch does not matter with a table
    for i in range(0, 40, 3):
        np.testing.assert_array_equal(d10.uniforms(i), table.uniforms(i))
        a, b = d10[i]["corrupted"], d30[i]["corrupted"]
        assert (b <= a).all()
        assert torch.equal(d10[i]["clean"], d30[i]["clean"])
    with pytest.raises(ValueError, match="rows"):
        _ds(duck, mask_table=MaskTable(10, seed=0))


# ----------------------------------------------------------------------------------------------------- loaders


def test_shuffle_reproducible_from_seed(duck):
    ds = _ds(duck)

    def order(seed):
        loader = make_loader(ds, 10, shuffle=True, num_workers=0, seed=seed, drop_last=True)
        return [torch.cat([b["index"] for b in loader]).tolist() for _ in range(2)]

    first, again, other = order(1), order(1), order(2)
    assert first == again
    assert first[0] != first[1]  # a new permutation each pass
    assert first != other
    assert sorted(first[0]) == list(range(40))


def test_distributed_sampler_shards(duck):
    ds = _ds(duck)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(0)
        loader = make_loader(ds, 5, shuffle=True, num_workers=0, seed=0, drop_last=False, sampler=sampler)
        seen.append(torch.cat([b["index"] for b in loader]).tolist())
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(40))


# -------------------------------------------------------------------------------------------------- bad input


def test_bad_sketches_raise_value_error():
    good = make_sketch(np.random.default_rng(0))
    nan = good.copy()
    nan[2, 0] = np.nan
    ds = _ds([good, np.zeros((0, 3), np.float32), nan])
    ds[0]
    with pytest.raises(ValueError, match="sketch 1"):
        ds[1]
    with pytest.raises(ValueError, match="sketch 2"):
        ds[2]


def test_bad_arguments_raise(duck):
    with pytest.raises(ValueError, match="max_len"):
        _ds(duck, max_len=5)
    with pytest.raises(ValueError, match="scale"):
        _ds(duck, scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        _ds(duck, scale=float("nan"))
    with pytest.raises(ValueError, match="render mode"):
        _ds(duck, render_mode="pretty")
    with pytest.raises(ValueError, match="mask_prob"):
        _ds(duck, mask_prob=1.5)
    with pytest.raises(ValueError, match="epoch"):
        _ds(duck).set_epoch(-1)
    with pytest.raises(TypeError):
        HealingDataset(42, scale=1.0, max_len=10)
