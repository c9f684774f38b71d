import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def pytest_configure(config):
    # One intra-op thread: on a small shared CPU machine torch's default (all cores) makes small updates
    # many times slower through thread contention, and a fixed count keeps CPU results reproducible.
    import torch

    torch.set_num_threads(1)
