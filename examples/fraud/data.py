"""The fraud example's data generator (source.toml's data): `python data.py OUT_DIR [options]`."""

from fraud_model.data import main

if __name__ == "__main__":
    raise SystemExit(main())
