"""Deterministic synthetic daily unit sales per store and product family (nothing is downloaded).

Each store x family series is a negative-binomial count around a log-mean made of a store level,
a family level, a per-store trend, a per-family weekly and yearly profile, week-long promotions,
holidays and a slowly drifting level of its own (an AR(1) in log space, so recent sales carry
information the calendar does not). The features are what is known a week ahead: calendar codes,
the planned promotion, the holiday flag, and sales of a week or more ago. The last weeks by date
are the validation channel: a time split, as a forecast is used. The same seed gives
byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DATE",
    "FEATURES",
    "START",
    "TARGET",
    "generate",
    "main",
    "split",
    "write_channels",
]

DATE = "date"
TARGET = "units"
FEATURES = (
    "store",
    "family",
    "day_of_week",
    "day_of_year",
    "month",
    "promo",
    "holiday",
    "lag_7",
    "lag_14",
    "rolling_mean_7",
)
START = pd.Timestamp("2023-01-02")
# lag_14 reaches 14 days back; these days are simulated before START and never written, so every
# written row has all of its features.
_WARMUP = 14
# Fixed-date holidays (month, day); Black Friday is added per year since its date moves.
_HOLIDAYS = ((1, 1), (2, 14), (5, 1), (7, 4), (10, 31), (11, 11), (12, 24), (12, 25), (12, 31))
# Monday..Sunday shape in log space: quiet early week, busy weekend.
_WEEKLY = np.array([-0.12, -0.15, -0.08, 0.0, 0.12, 0.32, 0.22])
# Variance is mu + mu^2 / _DISPERSION: noisier than Poisson, as real shelf sales are.
_DISPERSION = 8.0
# A bound on memory: the generator holds a few float arrays of this many values at once.
MAX_ROWS = 5_000_000


def _holidays(dates: pd.DatetimeIndex) -> np.ndarray:
    """1 on the fixed-date holidays and on Black Friday (the day after November's 4th Thursday)."""
    month_day = set(_HOLIDAYS)
    flags = np.array([(d.month, d.day) in month_day for d in dates], dtype=np.int64)
    for year in sorted(set(dates.year)):
        november = pd.date_range(f"{year}-11-01", f"{year}-11-30")
        black_friday = november[november.day_of_week == 3][3] + pd.Timedelta(days=1)
        flags[dates == black_friday] = 1
    return flags


def generate(stores: int, families: int, days: int, seed: int) -> pd.DataFrame:
    """`days` days of sales for every store x family, sorted by date, store and family."""
    rng = np.random.default_rng(seed)
    total = days + _WARMUP
    dates = pd.date_range(START - pd.Timedelta(days=_WARMUP), periods=total, freq="D")
    dow = dates.day_of_week.to_numpy()
    doy = dates.day_of_year.to_numpy()
    years = (np.arange(total) - _WARMUP) / 365.25

    store_level = rng.normal(np.log(18.0), 0.45, stores)
    store_trend = rng.normal(0.06, 0.05, stores)
    family_level = rng.normal(0.0, 0.6, families)
    weekly_scale = rng.uniform(0.5, 1.5, families)
    yearly_amplitude = rng.uniform(0.05, 0.35, families)
    yearly_phase = rng.uniform(0.0, 2 * np.pi, families)
    promo_lift = rng.uniform(0.2, 0.6, families)
    holiday_lift = 0.35

    # Promotions run Monday..Sunday: one draw per series and calendar week.
    week = (np.arange(total) + dow[0]) // 7
    promo_weeks = rng.random((stores, families, int(week[-1]) + 1)) < 0.12
    promo = promo_weeks[:, :, week].astype(np.int64)
    holiday = _holidays(dates)

    drift = np.zeros((stores, families, total))
    shocks = rng.normal(0.0, 0.04, (stores, families, total))
    for t in range(1, total):
        drift[:, :, t] = 0.97 * drift[:, :, t - 1] + shocks[:, :, t]

    log_mean = (
        store_level[:, None, None]
        + family_level[None, :, None]
        + store_trend[:, None, None] * years[None, None, :]
        + weekly_scale[None, :, None] * _WEEKLY[dow][None, None, :]
        + yearly_amplitude[None, :, None]
        * np.sin(2 * np.pi * doy[None, None, :] / 365.25 + yearly_phase[None, :, None])
        + promo_lift[None, :, None] * promo
        + holiday_lift * holiday[None, None, :]
        + drift
    )
    mean = np.exp(log_mean)
    units = rng.negative_binomial(_DISPERSION, _DISPERSION / (_DISPERSION + mean))

    # Only sales of a week or more ago: the forecast is made a week ahead, so nothing nearer is
    # known when it is used (and the validation rows never see their own targets).
    lag_7 = units[:, :, _WARMUP - 7 : total - 7]
    lag_14 = units[:, :, _WARMUP - 14 : total - 14]
    window = np.stack([units[:, :, _WARMUP - k : total - k] for k in range(7, 14)])
    rolling = np.round(window.mean(axis=0), 4)

    kept = slice(_WARMUP, total)
    shape = (stores, families, days)
    store_ids = np.broadcast_to(np.arange(stores)[:, None, None], shape)
    family_ids = np.broadcast_to(np.arange(families)[None, :, None], shape)

    def calendar(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values[kept][None, None, :], shape)

    columns = {
        DATE: calendar(np.asarray(dates.strftime("%Y-%m-%d"))),
        "store": store_ids,
        "family": family_ids,
        "day_of_week": calendar(dow),
        "day_of_year": calendar(doy),
        "month": calendar(dates.month.to_numpy()),
        "promo": promo[:, :, kept],
        "holiday": calendar(holiday),
        "lag_7": lag_7,
        "lag_14": lag_14,
        "rolling_mean_7": rolling,
        TARGET: units[:, :, kept],
    }
    # (store, family, day) -> rows ordered by day first, as a time series file is read.
    frame = pd.DataFrame({k: np.moveaxis(v, 2, 0).reshape(-1) for k, v in columns.items()})
    int_columns = [c for c in frame.columns if c not in (DATE, "rolling_mean_7")]
    return frame.astype(dict.fromkeys(int_columns, "int64"))


def split(frame: pd.DataFrame, validation_weeks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on everything before the last `validation_weeks` weeks, validate on those weeks."""
    dates = pd.to_datetime(frame[DATE])
    cut = dates.max() - pd.Timedelta(days=7 * validation_weeks - 1)
    before = (dates < cut).to_numpy()
    return frame[before].reset_index(drop=True), frame[~before].reset_index(drop=True)


def write_channels(
    out_dir: Path,
    stores: int,
    families: int,
    days: int,
    seed: int,
    validation_weeks: int = 8,
) -> dict[str, Path]:
    """Write train/ and validation/ CSV channels under out_dir; return channel -> file."""
    train, validation = split(generate(stores, families, days, seed), validation_weeks)
    files = {}
    for channel, part in (("train", train), ("validation", validation)):
        folder = out_dir / channel
        folder.mkdir(parents=True, exist_ok=True)
        files[channel] = folder / "data.csv"
        part.to_csv(files[channel], index=False, lineterminator="\n")
    return files


def main(argv: list[str] | None = None) -> int:
    """`python data.py OUT_DIR [--stores N] [--families N] [--days N] [--seed S]`: the channels."""
    import argparse

    parser = argparse.ArgumentParser(prog="data.py", description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--families", type=int, default=10)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--validation-weeks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not 1 <= args.stores <= 1000 or not 1 <= args.families <= 200:
        parser.error("--stores must be 1..1000 and --families 1..200")
    if not 1 <= args.validation_weeks <= 52:
        parser.error("--validation-weeks must be 1..52")
    # At least four weeks of training history before the validation weeks, at most ten years.
    least = 7 * args.validation_weeks + 28
    if not least <= args.days <= 3660:
        parser.error(
            f"--days must be {least}..3660 with --validation-weeks {args.validation_weeks}"
        )
    if args.stores * args.families * args.days > MAX_ROWS:
        parser.error(f"--stores x --families x --days must be at most {MAX_ROWS} rows")
    write_channels(
        args.out_dir, args.stores, args.families, args.days, args.seed, args.validation_weeks
    )
    return 0
