"""CPU thread choice: cores left by data workers, other processes and the rest of the machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

from frozen.threads import suggested_threads


@pytest.mark.parametrize("cores, workers, processes, expected", [
    (1, 0, 1, 1), (2, 0, 1, 1), (2, 1, 1, 1), (2, 4, 1, 1),   # never below one
    (4, 0, 1, 3), (16, 4, 1, 11), (16, 2, 2, 5), (64, 0, 8, 7),
])
def test_threads_leave_room_for_workers_and_the_machine(cores, workers, processes, expected):
    assert suggested_threads(workers, processes, cores=cores) == expected


def run_threads(env_threads: str | None) -> int:
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if env_threads:
        env["OMP_NUM_THREADS"] = env_threads
    code = "from frozen.threads import set_cpu_threads; print(set_cpu_threads(data_workers=0))"
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout)


def test_the_users_omp_num_threads_wins():
    from frozen.threads import usable_cores

    assert run_threads(None) == suggested_threads(0, 1, cores=usable_cores())
    assert run_threads("2") == 2            # one more than chosen on a 2-core machine
