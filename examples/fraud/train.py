"""Entry point of the fraud example (source.toml's entry_point): `python train.py [--key value]`."""

from fraud_model.train import train

import mlp_training

if __name__ == "__main__":
    raise SystemExit(mlp_training.run(train))
