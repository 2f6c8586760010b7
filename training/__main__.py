"""`python -m training [--name value ...]`: the training entry point (see training/train.py)."""

import sys

from training.train import main

sys.exit(main())
