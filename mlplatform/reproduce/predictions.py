"""Compare two MLflow models' predictions on a channel's CSV files; print the result as JSON.

    python predictions.py RECORDED_MODEL_DIR REBUILT_MODEL_DIR CHANNEL_DIR

Run by `invoke reproduce` with the source's own interpreter (the models' flavors and packages
live there, not in the kit's environment), so it imports nothing of the kit. The input is the
columns of the recorded model's signature, cast to its types, as an endpoint would receive them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(recorded_dir: str, rebuilt_dir: str, channel_dir: str) -> dict[str, object]:
    """Rows compared, the largest absolute difference, and the largest recorded magnitude."""
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    files = sorted(Path(channel_dir).rglob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in {channel_dir} to predict on")
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    recorded = mlflow.pyfunc.load_model(recorded_dir)
    rebuilt = mlflow.pyfunc.load_model(rebuilt_dir)
    schema = recorded.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        names = schema.input_names()
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise SystemExit(f"the channel lacks the model's input columns {missing}")
        types = {spec.name: spec.type.to_pandas() for spec in schema.inputs}
        frame = frame[names].astype(types)
    before = np.asarray(recorded.predict(frame), dtype="float64")
    after = np.asarray(rebuilt.predict(frame), dtype="float64")
    return {"rows": len(frame), **difference(before, after)}


def difference(before: object, after: object) -> dict[str, object]:
    """How two prediction arrays differ.

    Whether identical, the largest difference and magnitude among finite pairs, and how many
    predictions are NaN or infinite on one side and not the same on the other.
    """
    import numpy as np

    before, after = np.asarray(before, dtype="float64"), np.asarray(after, dtype="float64")
    if before.shape != after.shape:
        return {"shapes": [list(before.shape), list(after.shape)]}
    finite = np.isfinite(before) & np.isfinite(after)
    # Outside the finite pairs only the same NaN or the same infinity agrees.
    same = (np.isnan(before) & np.isnan(after)) | (before == after)
    return {
        "identical": bool(np.array_equal(before, after, equal_nan=True)),
        "max_abs_difference": float(np.max(np.abs(before - after)[finite], initial=0.0)),
        "scale": float(np.max(np.abs(before)[finite], initial=0.0)),
        "non_finite_mismatches": int(np.sum(~finite & ~same)),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
