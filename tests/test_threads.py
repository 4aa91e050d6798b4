"""CPU thread choice: cores left by data workers, other processes and the rest of the machine."""

from __future__ import annotations

import pytest

from frozen.threads import suggested_threads


@pytest.mark.parametrize("cores, workers, processes, expected", [
    (1, 0, 1, 1), (2, 0, 1, 1), (2, 1, 1, 1), (2, 4, 1, 1),   # never below one
    (4, 0, 1, 3), (16, 4, 1, 11), (16, 2, 2, 5), (64, 0, 8, 7),
])
def test_threads_leave_room_for_workers_and_the_machine(cores, workers, processes, expected):
    assert suggested_threads(workers, processes, cores=cores) == expected


def test_the_users_omp_num_threads_wins(monkeypatch):
    import torch

    import frozen.threads as threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(threads, "USER_OMP_NUM_THREADS", "2")     # as read at import
        assert threads.set_cpu_threads(data_workers=1) == 2
        monkeypatch.setattr(threads, "USER_OMP_NUM_THREADS", None)
        assert threads.set_cpu_threads(data_workers=1) == suggested_threads(1)
    finally:
        torch.set_num_threads(before)
