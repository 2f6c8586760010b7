"""The forecast example's data generator (source.toml's data): `python data.py OUT_DIR [opts]`."""

from forecast_model.data import main

if __name__ == "__main__":
    raise SystemExit(main())
