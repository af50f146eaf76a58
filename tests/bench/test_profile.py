import pytest

from multimix.bench.profile import format_profile, profile_training_step
from multimix.runs.commands import benchmark


def test_profile_names_every_part_of_the_step_and_its_share():
    rows = {row.name: row for row in profile_training_step(32, 2, steps=1)}
    assert {
        "forward",
        "classification views",
        "segmentation views",
        "saliency",
        "bridge + decoder",
        "losses",
        "backward",
        "optimizer",
    } <= set(rows)
    assert "domain head" not in rows  # the benchmark model has none: a part that did not run is left out
    # nested scopes are inclusive: a part never costs more than the scope around it
    assert rows["saliency"].ms_per_step <= rows["segmentation views"].ms_per_step <= rows["forward"].ms_per_step
    phases = sum(rows[name].share for name in ("forward", "backward", "optimizer"))
    assert 0.5 < phases <= 1.05  # the three phases are (nearly) the whole step
    assert all(row.ms_per_step > 0 for row in rows.values())
    text = format_profile(list(rows.values()))
    assert "    saliency" in text  # indented under the segmentation views


def test_profile_refuses_zero_steps():
    with pytest.raises(ValueError, match="steps"):
        profile_training_step(32, 2, steps=0)


def test_profile_command_is_cpu_only(capsys):
    assert benchmark.main(["--profile", "--device", "cuda", "--sizes", "32"]) == 2
    assert "cpu" in capsys.readouterr().out
