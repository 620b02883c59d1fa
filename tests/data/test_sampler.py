"""Cross-modal identity sampler: batch composition, pairing, determinism, distributed shares, resume."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vireid.data.records import INFRARED, VISIBLE, ImageRecord
from vireid.data.sampler import CrossModalIdentitySampler
from vireid.errors import CheckpointError, ConfigError, DatasetError


def make_records(num_ids: int, n_vis=lambda i: 3 + i % 5, n_ir=lambda i: 2 + i % 4) -> list[ImageRecord]:
    recs = []
    for label in range(num_ids):
        pid = 100 + label
        for m, n in ((VISIBLE, n_vis(label)), (INFRARED, n_ir(label))):
            recs += [ImageRecord(f"{m}/{pid}/{j}.jpg", pid, 1 + m, m, label) for j in range(n)]
    # interleave so that indices of an identity are not contiguous
    return recs[::2] + recs[1::2]


def indices(batch):
    return [d.index for d in batch]


@given(num_ids=st.integers(4, 23), p=st.integers(1, 4), k=st.integers(1, 5), world=st.integers(1, 3))
@settings(max_examples=25, deadline=None)
def test_batch_composition_and_pairing(num_ids, p, k, world):
    recs = make_records(num_ids)
    if num_ids < p * world:
        with pytest.raises(ConfigError, match="ids_per_batch"):
            CrossModalIdentitySampler(recs, p, k, world_size=world)
        return
    seen_ids = []
    for rank in range(world):
        s = CrossModalIdentitySampler(recs, p, k, seed=3, rank=rank, world_size=world)
        batches = list(s)
        assert len(batches) == len(s) == num_ids // (p * world)
        for batch in batches:
            idx = indices(batch)
            assert len(idx) == s.batch_size == p * 2 * k
            labels = [recs[i].label for i in idx]
            mods = [recs[i].modality for i in idx]
            assert mods == ([VISIBLE] * k + [INFRARED] * k) * p
            vis = [lab for lab, m in zip(labels, mods, strict=True) if m == VISIBLE]
            ir = [lab for lab, m in zip(labels, mods, strict=True) if m == INFRARED]
            assert vis == ir  # the k-th visible and k-th infrared image of the batch: same identity
            blocks = [labels[b * 2 * k : (b + 1) * 2 * k] for b in range(p)]
            assert all(len(set(bl)) == 1 for bl in blocks)
            assert len({bl[0] for bl in blocks}) == p  # P distinct identities
            for bl_start in range(0, len(idx), k):
                chunk = idx[bl_start : bl_start + k]
                pool = [i for i, r in enumerate(recs) if r.label == labels[bl_start] and r.modality == mods[bl_start]]
                assert set(chunk) <= set(pool)
                if len(pool) >= k:
                    assert len(set(chunk)) == k  # no replacement when there are enough images
            seen_ids += [bl[0] for bl in blocks]
    # disjoint shares across ranks, covering num_ids // (p * world) * p * world identities
    assert len(seen_ids) == len(set(seen_ids)) == (num_ids // (p * world)) * p * world


def test_replacement_only_when_too_few():
    recs = make_records(4, n_vis=lambda i: 1, n_ir=lambda i: 2)
    s = CrossModalIdentitySampler(recs, 2, 4, seed=0)
    for batch in s:
        idx = indices(batch)
        for b in range(0, len(idx), 4):
            chunk = idx[b : b + 4]
            assert len({recs[i].label for i in chunk}) == 1
            assert len(set(chunk)) <= 2  # 1 or 2 distinct images, drawn with replacement


def test_deterministic_for_seed_and_epoch():
    recs = make_records(12)
    a = CrossModalIdentitySampler(recs, 3, 2, seed=7)
    b = CrossModalIdentitySampler(recs, 3, 2, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b.set_epoch(1)
    assert list(b) == second
    assert list(CrossModalIdentitySampler(recs, 3, 2, seed=8)) != first
    # augmentation seeds differ between draws
    seeds = [d.seed for batch in first for d in batch]
    assert len(set(seeds)) == len(seeds)


def test_each_epoch_is_a_pass_over_the_identities():
    recs = make_records(12)
    s = CrossModalIdentitySampler(recs, 4, 2, seed=1)
    labels = [recs[d.index].label for batch in s for d in batch[::4]]  # first image of each block
    assert sorted(labels) == list(range(12))


def test_ranks_draw_the_same_images_as_one_process():
    recs = make_records(16)
    single = CrossModalIdentitySampler(recs, 2, 2, seed=4, world_size=1)
    shares = [CrossModalIdentitySampler(recs, 2, 2, seed=4, rank=r, world_size=2) for r in range(2)]
    # global batch j goes to rank j % world_size; the random stream does not depend on the rank
    merged = [b for pair in zip(*[list(s) for s in shares], strict=True) for b in pair]
    assert merged == list(single)


def test_resume_mid_epoch():
    recs = make_records(20)
    s = CrossModalIdentitySampler(recs, 2, 2, seed=9)
    s.set_epoch(3)
    it = iter(s)
    taken = [next(it), next(it), next(it)]
    state = s.state_dict()
    assert state["epoch"] == 3 and state["batches_done"] == 3
    rest = list(it)

    t = CrossModalIdentitySampler(recs, 2, 2, seed=9)
    t.load_state_dict(state)
    assert list(t) == rest
    assert list(t) == taken + rest  # the next iteration is the whole epoch again
    u = CrossModalIdentitySampler(recs, 2, 2, seed=9)
    u.load_state_dict(s.state_dict(batches_done=1))
    assert list(u) == (taken + rest)[1:]


def test_resume_with_other_settings_fails():
    recs = make_records(20)
    state = CrossModalIdentitySampler(recs, 2, 2, seed=9).state_dict()
    with pytest.raises(CheckpointError, match="instances"):
        CrossModalIdentitySampler(recs, 2, 3, seed=9).load_state_dict(state)


@pytest.mark.parametrize(("saved_world", "new_world"), [(2, 1), (1, 2), (2, 3)])
def test_resume_at_an_epoch_boundary_with_another_number_of_processes(saved_world, new_world):
    recs = make_records(24)
    old = [CrossModalIdentitySampler(recs, 2, 2, seed=9, rank=r, world_size=saved_world) for r in range(saved_world)]
    for s in old:
        s.set_epoch(4)
        list(s)  # the whole epoch: batches_done == its length
    finished = old[0].state_dict()
    assert finished["batches_done"] == len(old[0])
    new = [CrossModalIdentitySampler(recs, 2, 2, seed=9, rank=r, world_size=new_world) for r in range(new_world)]
    for s in new:
        s.load_state_dict(finished)
        assert s.epoch == 4 and list(s) == []  # nothing of the finished epoch is left
        s.set_epoch(5)  # the next epoch is dealt for the new number of processes
    fresh = CrossModalIdentitySampler(recs, 2, 2, seed=9, world_size=1)
    merged = [b for j in range(len(new[0])) for s in new for b in [s.plan(5)[j]]]
    assert merged == fresh.plan(5)[: len(merged)]  # global batch j goes to rank j % N, as always
    for s in new:  # an epoch not yet begun (batches_done 0) is accepted too and starts at its first batch
        s.load_state_dict({**finished, "batches_done": 0})
        assert list(s) == s.plan(4)


def test_resume_mid_epoch_with_another_number_of_processes_fails():
    recs = make_records(24)
    s = CrossModalIdentitySampler(recs, 2, 2, seed=9, world_size=2)
    state = s.state_dict(batches_done=2)
    with pytest.raises(CheckpointError, match=r"mid-epoch \(epoch 1, batch 2 of 6\) with 2 process\(es\)"):
        CrossModalIdentitySampler(recs, 2, 2, seed=9, world_size=1).load_state_dict(state)
    CrossModalIdentitySampler(recs, 2, 2, seed=9, rank=1, world_size=2).load_state_dict(state)  # same N: fine


def test_unlabelled_or_single_modality_records():
    recs = make_records(4)
    with pytest.raises(DatasetError, match="no training label"):
        CrossModalIdentitySampler([*recs, ImageRecord("x.jpg", 1, 1, VISIBLE, -1)], 2, 2)
    only_vis = [r for r in recs if not (r.label == 2 and r.modality == INFRARED)]
    with pytest.raises(DatasetError, match="label 2 has no infrared"):
        CrossModalIdentitySampler(only_vis, 2, 2)
