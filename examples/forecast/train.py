"""Entry point of the forecast example (source.toml's entry_point): `python train.py [--k v]`."""

from forecast_model.train import train

import mlp_training

if __name__ == "__main__":
    raise SystemExit(mlp_training.run(train))
