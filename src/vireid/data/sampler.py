"""The cross-modal identity sampler: batches of P identities x (K visible + K infrared) images.

A batch is P identity blocks, each K visible then K infrared images, so the k-th visible image of a batch
and the k-th infrared image of the batch belong to the same identity (the pairs of the cross-distillation
losses). ``epoch_length="ids"``: an epoch is one pass over the identities in a random order (as the
released code): ``num_ids // P`` global batches. ``epoch_length="images"``: an epoch shows about as many
images as the training set holds (``round(num_images / (2 P K))`` global batches, the convention of
torchreid and the AGW family), the identities dealt from successive shuffled passes, never twice in one
batch. Every process gets ``global batches // world_size`` of them and the processes' identities within
a step are disjoint. Images are drawn
without replacement, unless an identity has fewer than K images of a modality. Everything is a function of
(seed, epoch) through a ``torch.Generator``; each draw also carries a seed for its augmentation, so that
augmentation does not depend on the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Sampler

from vireid.errors import CheckpointError, ConfigError, DatasetError

from .records import VISIBLE, ImageRecord

EPOCH_LENGTHS = ("ids", "images")


class Draw(NamedTuple):
    """One sampled image: its position in the record list and the seed of its augmentation."""

    index: int
    seed: int


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for (seed, epoch)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


class CrossModalIdentitySampler(Sampler[list[Draw]]):
    """Batch sampler over training records (use as ``DataLoader(batch_sampler=...)``).

    Yields lists of ``Draw(index, seed)`` of length ``ids_per_batch * 2 * instances``.
    Call ``set_epoch(epoch)`` before each epoch; ``state_dict``/``load_state_dict`` resume mid-epoch.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        ids_per_batch: int,
        instances: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_length: str = "ids",
    ) -> None:
        if epoch_length not in EPOCH_LENGTHS:
            raise ConfigError(f"data.epoch_length: expected one of {', '.join(EPOCH_LENGTHS)}, got {epoch_length!r}")
        if ids_per_batch < 1 or instances < 1:
            raise ConfigError(f"sampler: ids_per_batch and instances must be >= 1, got {ids_per_batch}, {instances}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"sampler: expected 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        by_label: dict[int, tuple[list[int], list[int]]] = {}
        for i, r in enumerate(records):
            if r.label < 0:
                raise DatasetError(f"sampler: record {r.path} has no training label")
            vis, ir = by_label.setdefault(r.label, ([], []))
            (vis if r.modality == VISIBLE else ir).append(i)
        for label, (vis, ir) in by_label.items():
            if not vis or not ir:
                missing = "visible" if not vis else "infrared"
                raise DatasetError(f"sampler: training label {label} has no {missing} image")
        self.labels = sorted(by_label)
        self._pools = [
            (torch.tensor(by_label[lab][0], dtype=torch.long), torch.tensor(by_label[lab][1], dtype=torch.long))
            for lab in self.labels
        ]
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.epoch_length = epoch_length
        self.num_images = len(records)
        self.ids_per_batch, self.instances = ids_per_batch, instances
        self.num_batches = self._batches_for(world_size)
        if self.num_batches == 0:
            raise ConfigError(
                f"data.ids_per_batch: {ids_per_batch} identities x {world_size} process(es) per step, "
                f"but the training set has only {len(self.labels)} identities"
            )
        self.epoch = 0
        self._start = 0
        self.batches_done = 0

    def _batches_for(self, world_size: int) -> int:
        """Batches per process and epoch with ``world_size`` processes."""
        if self.epoch_length == "ids" or self.ids_per_batch > len(self.labels):
            return len(self.labels) // (self.ids_per_batch * world_size)
        global_batches = max(1, round(self.num_images / (self.ids_per_batch * 2 * self.instances)))
        return global_batches // world_size

    @property
    def batch_size(self) -> int:
        return self.ids_per_batch * 2 * self.instances

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields (from its first batch)."""
        self.epoch, self._start, self.batches_done = int(epoch), 0, 0

    def _pick(self, pool: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        k = self.instances
        if len(pool) >= k:
            return pool[torch.randperm(len(pool), generator=g)[:k]]
        return pool[torch.randint(len(pool), (k,), generator=g)]

    def plan(self, epoch: int | None = None) -> list[list[Draw]]:
        """This process's batches of ``epoch`` (default: the current one), all of them."""
        epoch = self.epoch if epoch is None else epoch
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        p, n = self.ids_per_batch, self.batch_size
        total = self.num_batches * self.world_size
        if self.epoch_length == "ids":
            order = torch.randperm(len(self.labels), generator=g).tolist()
            groups = [order[j * p : (j + 1) * p] for j in range(total)]
        else:
            groups = self._deal(total, g)
        batches = []
        # Every process draws every global batch, so the random stream does not depend on rank.
        for j, group in enumerate(groups):
            blocks = []
            for pos in group:
                vis, ir = self._pools[pos]
                blocks += [self._pick(vis, g), self._pick(ir, g)]
            seeds = torch.randint(2**63 - 1, (n,), generator=g)
            if j % self.world_size == self.rank:
                idx = torch.cat(blocks).tolist()
                batches.append([Draw(i, s) for i, s in zip(idx, seeds.tolist(), strict=True)])
        return batches

    def _deal(self, total: int, g: torch.Generator) -> list[list[int]]:
        """``total`` groups of P distinct identity positions from successive shuffled passes; an identity
        drawn twice across a pass boundary waits for the next group."""
        p, deck, groups = self.ids_per_batch, [], []
        for _ in range(total):
            group: list[int] = []
            waiting: list[int] = []
            while len(group) < p:
                if not deck:
                    deck = torch.randperm(len(self.labels), generator=g).tolist()
                pos = deck.pop(0)
                (waiting if pos in group else group).append(pos)
            deck = waiting + deck
            groups.append(group)
        return groups

    def __iter__(self) -> Iterator[list[Draw]]:
        start, self._start = self._start, 0
        self.batches_done = start
        for batch in self.plan()[start:]:
            self.batches_done += 1
            yield batch

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """Where the sampler stands: epoch and batches consumed in it.

        A DataLoader with workers prefetches, so the sampler's own count runs ahead of training: pass the
        number of steps actually taken in this epoch as ``batches_done`` to resume exactly.
        """
        return {
            "seed": self.seed, "epoch": self.epoch,
            "batches_done": self.batches_done if batches_done is None else int(batches_done),
            "ids_per_batch": self.ids_per_batch, "instances": self.instances,
            "world_size": self.world_size, "num_ids": len(self.labels), "epoch_length": self.epoch_length,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields the saved epoch's batches from ``batches_done`` on.

        A state saved with another number of processes is accepted at an epoch boundary (no batch of the
        epoch done, or all of them): the next epoch is dealt for the current number of processes. Mid-epoch
        it is refused, because which batches were done depends on how the epoch was dealt.
        """
        if state.get("epoch_length", "ids") != self.epoch_length:
            raise CheckpointError(f"sampler state: epoch_length is {state.get('epoch_length', 'ids')!r} in the "
                                  f"checkpoint but {self.epoch_length!r} now")
        for key in ("seed", "ids_per_batch", "instances", "num_ids"):
            mine = len(self.labels) if key == "num_ids" else getattr(self, key)
            if key in state and int(state[key]) != mine:
                raise CheckpointError(f"sampler state: {key} is {state[key]} in the checkpoint but {mine} now")
        epoch, done = int(state["epoch"]), int(state.get("batches_done", 0))
        saved_world = int(state.get("world_size", self.world_size))
        if saved_world != self.world_size:
            saved_len = self._batches_for(saved_world)
            if done not in (0, saved_len):
                raise CheckpointError(
                    f"sampler state: saved mid-epoch (epoch {epoch + 1}, batch {done} of {saved_len}) with "
                    f"{saved_world} process(es) but resumed with {self.world_size}; resume it with "
                    f"{saved_world} process(es), or from an end-of-epoch checkpoint"
                )
            done = 0 if done == 0 else self.num_batches  # the same boundary, in this dealing's batches
        self.epoch = epoch
        self._start = self.batches_done = done
