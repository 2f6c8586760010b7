"""The forecast example's data generator: deterministic, a time split, history from the past."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from forecast_model import data


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    a = data.write_channels(tmp_path / "a", 3, 2, 120, seed=5, validation_weeks=2)
    b = data.write_channels(tmp_path / "b", 3, 2, 120, seed=5, validation_weeks=2)
    c = data.write_channels(tmp_path / "c", 3, 2, 120, seed=6, validation_weeks=2)
    assert a["train"].read_bytes() == b["train"].read_bytes()
    assert a["validation"].read_bytes() == b["validation"].read_bytes()
    assert a["train"].read_bytes() != c["train"].read_bytes()


def test_validation_is_the_last_weeks_and_history_looks_back_a_week() -> None:
    frame = data.generate(2, 2, 120, seed=1)
    train, validation = data.split(frame, validation_weeks=2)
    assert pd.to_datetime(train[data.DATE]).max() < pd.to_datetime(validation[data.DATE]).min()
    assert validation[data.DATE].nunique() == 14
    # lag_7 is the units of the same series seven days before: never the row's own target.
    series = frame[(frame["store"] == 0) & (frame["family"] == 1)].reset_index(drop=True)
    assert (series["lag_7"].iloc[7:].to_numpy() == series[data.TARGET].iloc[:-7].to_numpy()).all()


@pytest.mark.parametrize(
    "args", [["--days", "30"], ["--stores", "0"], ["--validation-weeks", "53"]]
)
def test_bad_options_are_one_argparse_line(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        data.main([str(tmp_path), *args])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("data.py: error: ")
