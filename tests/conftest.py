import pytest
import torch

from multimix.utils.logging import setup_console_logging

torch.set_num_threads(2)
setup_console_logging()  # the library's notes reach the captured output, as on the command line

TINY_WIDTHS = (4, 8, 16)


@pytest.fixture
def tiny_widths():
    return TINY_WIDTHS


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory):
    """best.pt of a 2-step MultiMix run on the tiny synthetic config (class, mask and saliency)."""
    from multimix.runs.train import run_training

    from helpers import tiny_config

    out = tmp_path_factory.mktemp("trained") / "run"
    run_training(tiny_config(train__steps=2, train__out=str(out)), progress=False)
    return out / "checkpoints" / "best.pt"
