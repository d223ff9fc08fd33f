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


torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
