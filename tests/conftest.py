import pytest
import torch

torch.set_num_threads(2)

TINY_WIDTHS = (4, 8, 16)


@pytest.fixture
def tiny_widths():
    return TINY_WIDTHS
