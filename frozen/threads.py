"""CPU threads: how many torch intra-op (OpenMP) threads a process should run.

PyTorch starts one intra-op thread per core. Each parallel operation then waits at a barrier
for all of them, so when data-loader workers or another busy process take a core, every
operation waits for a thread that is not running: on a 2-core machine a shapes-world training
run went from 7.9 to 0.13 steps/s beside one other CPU-bound process. Lightning and
torch only split cores between DDP ranks; nothing accounts for data workers or for the rest of
the machine, so it is done here.

The choice: the cores this process may use (its CPU affinity), shared among the processes of
one run on this machine, less one per data-loader worker, less one core left to the rest of
the machine; at least one. On a 2-core machine that is one thread: a tiny model loses little to
it when the machine is idle (a parallel region costs more to start than it saves), and a run
beside another busy process keeps its pace. An explicit OMP_NUM_THREADS (set by
the user before the process started) always wins.
"""

from __future__ import annotations

import os

# OMP_NUM_THREADS as the user gave it, read when frozen is imported (launchers such as
# Lightning's DDP set it later for their own choice, which we refine).
USER_OMP_NUM_THREADS = os.environ.get("OMP_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; all cores where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def suggested_threads(data_workers: int = 0, processes: int = 1, cores: int | None = None) -> int:
    """Intra-op threads for one of `processes` processes, each with `data_workers` workers."""
    cores = usable_cores() if cores is None else cores
    share = max(1, cores // max(1, processes))
    spare = 1 if cores > 1 else 0          # a core for the rest of the machine
    return max(1, share - max(0, data_workers) - spare)


def set_cpu_threads(data_workers: int = 0, processes: int = 1) -> int:
    """Apply `suggested_threads` to torch (unless the user set OMP_NUM_THREADS); return the
    number of intra-op threads now in use."""
    import torch

    if USER_OMP_NUM_THREADS is None:
        torch.set_num_threads(suggested_threads(data_workers, processes))
    return torch.get_num_threads()
