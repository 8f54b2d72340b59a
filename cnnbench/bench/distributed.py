"""Training under ``torchrun``: DistributedDataParallel over the protocol of :mod:`cnnbench.bench.protocol`.

``torchrun --nproc-per-node N -m cnnbench bench|evaluate ...`` starts N copies of the
command; torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in each. With ``WORLD_SIZE`` above 1, :func:`context` returns a
:class:`Context` and the trainer:

- trains on the same global batches as one process would (same seed, same order, the
  recipe's ``batch_size`` is the *global* batch); each rank reads and preprocesses only its
  contiguous share of each (``batch_size / WORLD_SIZE`` samples; a last, shorter batch is
  shared as evenly as possible): in memory, its rows of the same permutation; streamed,
  its own lanes of the file (:class:`cnnbench.data.streaming.Lanes`). The augmentation runs
  on a global-sized batch holding the rank's rows, with the same generator, so its draws
  are one process's. Each rank's mean loss is weighted by its share of the batch, so the
  gradient DDP averages is the global batch's mean gradient, as in one process.
- scores val and test over the whole split exactly once: eval batch ``k`` is read and
  predicted by rank ``k % WORLD_SIZE`` alone; the predictions are gathered in order on every
  rank and the metrics computed from all of them (every rank then selects the same epoch).
- records the run on rank 0 only, with ``world_size`` and ``global_batch_size`` in its config.

Backends: gloo on CPU, NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``). Without torchrun (no
``WORLD_SIZE``, or 1) :func:`context` is None and nothing changes.

``CNNBENCH_DIST_TIMEOUT`` (seconds, default 300) bounds the wait for the other ranks, at
start-up and in every collective: a rank that cannot reach the others fails with one line
naming the timeout instead of hanging.
"""

from __future__ import annotations

import atexit
import datetime
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import CnnbenchError, ParamError

if TYPE_CHECKING:  # annotations only: torch is imported where a rank runs
    import torch

DEFAULT_TIMEOUT_S = 300.0


def world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ParamError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def is_writer() -> bool:
    """Whether this process records runs and prints results: rank 0, or no torchrun at all."""
    return world_size() <= 1 or os.environ.get("RANK", "0") == "0"


def timeout_s() -> float:
    raw = os.environ.get("CNNBENCH_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ParamError(f"CNNBENCH_DIST_TIMEOUT={raw!r}: expected a number of seconds above 0")
    return value


@dataclass
class Context:
    """This process's place in a torchrun job; the process group starts on first use."""

    rank: int
    world: int
    local_rank: int
    timeout: float
    started: bool = False

    def describe(self) -> str:
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        return f"rank {self.rank} of {self.world} (rendezvous {where})"

    # -- the process group ---------------------------------------------------------------

    def start(self, device: torch.device) -> None:
        if self.started:
            return
        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            with _cpp_logs_hidden():  # c10d logs each failed try with a C++ stack: our line says it
                dist.init_process_group(backend, rank=self.rank, world_size=self.world,
                                        timeout=datetime.timedelta(seconds=self.timeout))
        except Exception as exc:  # noqa: BLE001 -- store, socket and backend errors alike
            raise CnnbenchError(f"{self.describe()} could not reach the other ranks within "
                                f"{self.timeout:g} s (CNNBENCH_DIST_TIMEOUT): {_first_line(exc)}") from None
        self.started = True
        atexit.register(_stop)

    def device(self, device: torch.device) -> torch.device:
        """Each rank its own GPU (``cuda:LOCAL_RANK``); CPU stays CPU."""
        import torch

        if device.type != "cuda":
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise ParamError(f"{self.describe()}: LOCAL_RANK {self.local_rank} but torch sees "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def _collective(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 -- a peer gone, a timeout
            raise CnnbenchError(f"{self.describe()}: lost the other ranks during {what} (timeout "
                                f"{self.timeout:g} s, CNNBENCH_DIST_TIMEOUT): {_first_line(exc)}") from None

    # -- training -------------------------------------------------------------------------

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ParamError(f"world size {self.world} does not divide the batch size {batch_size}: "
                             f"each rank takes an equal share of every batch (choose --nproc-per-node "
                             f"dividing {batch_size})")

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        self.start(device)
        ids = [device.index] if device.type == "cuda" else None
        return self._collective("the model's broadcast", DistributedDataParallel, model, ids)

    def train_batches(self, split, batch_size: int, shuffle, seed: int, epoch: int,
                      augment=None, generator=None):
        """Yield ``(x, y, weight, rows)``: this rank's rows of each global batch of the epoch
        (one process's batches, see :meth:`~cnnbench.bench.protocol.Split.share_batches`),
        read and preprocessed alone, the weight of its mean loss and its row count.

        Shares are the contiguous ``[r*n//W, (r+1)*n//W)`` rows of a batch of ``n``; they
        differ by at most one row. A rank left without rows (a last batch shorter than the
        world) still runs one stand-in row, weighted 0, because every rank must join each step.

        ``augment`` runs on a global-batch-sized tensor holding this rank's rows at their
        place (zeros elsewhere), with the same generator on every rank: its draws, and so
        the augmented rows, are one process's. That holds for augmentations that transform
        each sample on its own (a Recipe's ``augment`` never sees the targets, so it cannot
        mix samples and labels); the augmentation's compute is not divided.
        """
        for x, y, lo, hi, n in split.share_batches(batch_size, shuffle, seed, epoch, self.rank, self.world):
            if augment is not None:  # on every rank and step, so the generators stay in step
                whole = x.new_zeros((n, *x.shape[1:]))
                whole[lo:hi] = x[:hi - lo]
                augmented = augment(whole, generator)
                x = augmented[lo:hi] if hi > lo else x
            yield x, y, (hi - lo) * self.world / n, hi - lo

    def sum(self, *values: float) -> list[float]:
        """Every rank's values summed (float64), on every rank."""
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        self._collective("a sum", dist.all_reduce, t)
        return t.cpu().tolist()

    # -- evaluation -------------------------------------------------------------------------

    def gather(self, parts: list[tuple[int, torch.Tensor]]) -> list[torch.Tensor]:
        """Every rank's ``(k, predictions)``, in batch order, on every rank."""
        import torch.distributed as dist

        gathered: list = [None] * self.world
        self._collective("the gathering of predictions", dist.all_gather_object, gathered,
                         [(k, p.cpu()) for k, p in parts])
        ordered = sorted((pair for rank_parts in gathered for pair in rank_parts), key=lambda pair: pair[0])
        return [p for _, p in ordered]

    def record_fields(self, batch_size: int | None) -> dict:
        return {"world_size": self.world, "global_batch_size": batch_size}


def _collective_device():
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


@contextmanager
def _cpp_logs_hidden():
    """Send file descriptor 2 (where torch's C++ logging writes) to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _stop() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


_CONTEXT: Context | None = None


def context() -> Context | None:
    """This process's :class:`Context` under torchrun (``WORLD_SIZE`` > 1), else None."""
    global _CONTEXT
    world = world_size()
    if world <= 1:
        return None
    if _CONTEXT is None or _CONTEXT.world != world:
        try:
            rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
        except (KeyError, ValueError):
            raise ParamError("WORLD_SIZE is set but RANK is not a number: start with torchrun") from None
        if not 0 <= rank < world:
            raise ParamError(f"RANK {rank} is not in 0..{world - 1}")
        _CONTEXT = Context(rank, world, local, timeout_s())
    return _CONTEXT
