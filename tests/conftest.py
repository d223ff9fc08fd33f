import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def gen():
    """A seeded numpy generator for reproducible random test cases."""
    import numpy as np

    return np.random.default_rng(12345)


def pytest_report_header(config):
    import divlab

    return f"divlab device: {divlab.device.describe()}"


# one intra-op thread: small per-step tensors pay far more for the thread pool hand-off than they gain
torch.set_num_threads(1)
