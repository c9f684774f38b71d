import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def pytest_configure(config):
    # One intra-op thread: on a small shared CPU machine torch's default (all cores) makes small updates
    # many times slower through thread contention, and a fixed count keeps CPU results reproducible.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread during a test, the previous count restored after it (a trainer under test
    sets its configured count). Tiny models on a busy two-core machine: OpenMP synchronisation between
    threads dominates (up to 50x)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
