"""`invoke build`: the images AWS runs, reproducible, saved as the bytes deploy pushes.

The `images` fixture has built MLflow's and the fraud source's training and serving images
(`invoke build --json`); here the serving image is built
again with no cache at all and must come out with the same digest, and each archive is checked
against what the engine runs under the image's tag. In the container lane (`./kit test`).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from mlplatform.images.oci_archive import open_image
from mlplatform.names import CONTAINER_RDS_CA_BUNDLE
from mlplatform.toolchain.rds_ca import RDS_CA_BUNDLE
from tests.cli import REPO
from tests.engines import KIT, run_checked

pytestmark = pytest.mark.container

# By the fixture's variable names (MLP_TEST_DIGEST_<NAME>).
TAGS = {
    "MLFLOW": "mlplatform/mlflow-server:local",
    "TRAINING_FRAUD": "mlplatform/training-fraud:local",
    "SERVING_FRAUD": "mlplatform/serving-fraud:local",
}


@pytest.mark.timeout(2400)
def test_a_build_from_scratch_gives_the_same_digest(images: dict[str, str]) -> None:
    again = run_checked([*KIT, "build", "--image", "serving", "--no-cache", "--json"], images, 2400)
    rebuilt = json.loads(again.stdout)["serving-fraud"]
    assert rebuilt["digest"] == images["MLP_TEST_DIGEST_SERVING_FRAUD"]


@pytest.mark.parametrize("name", sorted(TAGS))
def test_each_archive_is_the_image_the_engine_runs(images: dict[str, str], name: str) -> None:
    archive = Path(images[f"MLP_TEST_ARCHIVE_{name}"])
    with open_image(archive) as image:
        assert image.digest == images[f"MLP_TEST_DIGEST_{name}"]
        config = json.loads(next(iter(image.blobs.values())).read_text())
    # Stamped with the fixed time, and no build history naming intermediate images.
    assert config["created"].startswith("1970-01-01T00:00:00")
    assert not config.get("history")
    # The engine keeps Docker's config format (HEALTHCHECK) and the archive OCI's, so the
    # config bytes differ; the layers under the tag are the archive's, one for one.
    engine_layers = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", TAGS[name]],
        env=images,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert config["rootfs"]["diff_ids"] == json.loads(engine_layers)


def test_the_mlflow_image_carries_the_rds_ca_bundle_its_task_names(
    images: dict[str, str],
) -> None:
    """The bytes deploy pushes hold, at the path the task definition's MLFLOW_DB_SSL_CA names,
    the committed bundle of Amazon's RDS CAs (so TLS to RDS can verify in AWS)."""
    wanted = CONTAINER_RDS_CA_BUNDLE.lstrip("/")
    found = None
    with open_image(Path(images["MLP_TEST_ARCHIVE_MLFLOW"])) as image:
        for layer in list(image.blobs.values())[1:]:  # the config first, then the layers
            with tarfile.open(layer) as tar:
                member = next((m for m in tar if m.name.lstrip("./") == wanted), None)
                if member is not None:
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    found = extracted.read()
    assert found == RDS_CA_BUNDLE.read_bytes()


def test_the_serving_image_starts_as_sagemaker_starts_it(images: dict[str, str]) -> None:
    """`docker run IMAGE serve` with no model mounted: one line naming /opt/ml/model, exit 2."""
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", TAGS["SERVING_FRAUD"], "serve"],
        env=images,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "scoring_server: no MLflow model (MLmodel) in /opt/ml/model"


def test_bad_input_is_one_line(images: dict[str, str]) -> None:
    unknown = subprocess.run(
        [*KIT, "build", "--image", "webapp"], cwd=REPO, env=images, capture_output=True, text=True
    )
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "error: unknown image 'webapp'; choose from mlflow, training, serving"
    )
    no_engine = subprocess.run(
        [*KIT, "build"],
        cwd=REPO,
        env={**images, "MLP_ENGINE": "no-such-engine"},
        capture_output=True,
        text=True,
    )
    assert no_engine.returncode == 1
    lines = no_engine.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no container engine answers")
