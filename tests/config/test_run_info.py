"""The run record of a checkpoint: typed, versioned, one writer and one reader, old records migrated."""

import pytest
import torch

from multimix.config.run_info import DEFAULT_CLASS_NAMES, RUN_FORMAT, RunInfo, migrate_run_record
from multimix.utils.checkpoints import load_checkpoint

from helpers import tiny_config


def test_a_record_survives_a_weights_only_checkpoint(tmp_path):
    record = RunInfo(
        config=tiny_config().to_dict(),
        stage="finetune",
        environment={"torch": str(torch.__version__)},
        class_names=("healthy", "sick"),
        architecture={"backbone": "unet"},
        class_prior=(0.25, 0.75),
    )
    torch.save({"run": record.to_dict()}, tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert RunInfo.from_checkpoint(state, origin="c.pt") == record
    assert state["run"]["format"] == RUN_FORMAT and state["run"]["class_prior"] == [0.25, 0.75]


def test_a_record_of_the_first_format_is_migrated():
    old = {"config": {"model": {}}, "environment": {}, "split": "a key nothing reads", "class_prior": [0.4, 0.6]}
    record = RunInfo.from_dict(old, origin="old.pt")
    assert record.stage == "train" and record.class_names == DEFAULT_CLASS_NAMES
    assert record.class_prior == (0.4, 0.6) and record.format == RUN_FORMAT
    assert migrate_run_record(old)["format"] == RUN_FORMAT and "split" not in migrate_run_record(old)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"environment": {}}, "carries no run config"),
        ({"config": {}, "format": RUN_FORMAT + 1}, "newer than this multimix reads"),
        ({"config": {}, "format": RUN_FORMAT, "surprise": 1}, "holds surprise, which this version does not know"),
        ({"config": {}, "stage": "deploy"}, "stage must be one of"),
    ],
)
def test_records_that_cannot_be_read_are_named(record, message):
    with pytest.raises(ValueError, match=message):
        RunInfo.from_dict(record, origin="x.pt")


def test_a_trained_checkpoint_carries_todays_record(trained_checkpoint):
    record = RunInfo.from_checkpoint(load_checkpoint(trained_checkpoint), origin=str(trained_checkpoint))
    assert record.format == RUN_FORMAT and record.stage == "train"
    assert record.network["class"] == "MultiMixNet" and record.config["model"]["name"] == "multimix"
    assert record.class_prior is not None and sum(record.class_prior) == pytest.approx(1.0)
