"""mlplatform.names against the synthesized stacks: every output the library reads is declared."""

from __future__ import annotations

import pytest
from conftest import Synthesized

from mlplatform import names
from mlplatform.names import IMAGES, STACK_PARTS, Output, repository_output, team_role_output
from mlplatform.roster import load_roster

# CDK's own outputs for cross-stack references (Fn::ImportValue between the kit's stacks).
CDK_EXPORT = "ExportsOutput"
ACCOUNT = "222222222222"


def _declared(synth: Synthesized) -> dict[str, set[str]]:
    return {
        part: {
            k for k in synth.template_json(part).get("Outputs", {}) if not k.startswith(CDK_EXPORT)
        }
        for part in STACK_PARTS
    }


def test_each_output_key_is_declared_by_exactly_one_stack(each_env: Synthesized) -> None:
    declared = _declared(each_env)
    keys = {v for k, v in vars(Output).items() if k.isupper()} | {
        repository_output(image) for image in IMAGES
    }
    for key in keys:
        owners = [part for part, outputs in declared.items() if key in outputs]
        assert len(owners) == 1, (key, owners)


def test_every_declared_output_has_a_name_in_the_library(each_env: Synthesized) -> None:
    """An output the stacks add without a constant is an output nothing can read by name."""
    named = (
        {v for k, v in vars(Output).items() if k.isupper()}
        | {repository_output(image) for image in IMAGES}
        # One training role per team of teams.toml (names.team_role_output).
        | {team_role_output(team) for team in load_roster().teams}
    )
    for part, outputs in _declared(each_env).items():
        assert outputs <= named, (part, sorted(outputs - named))


def test_released_images_are_one_sorted_record_read_back_the_same() -> None:
    one, two = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    record = names.format_released({"fraud": one, "forecast": two})
    assert record == f"forecast={two},fraud={one}"
    assert names.parse_released(record) == {"fraud": one, "forecast": two}
    assert names.format_released({}) == names.NO_RELEASED_IMAGE
    assert names.parse_released(names.NO_RELEASED_IMAGE) == names.parse_released(None) == {}
    with pytest.raises(ValueError, match=r"'fraud=latest' is not <source name>=sha256:<64 hex>"):
        names.parse_released(f"forecast={two},fraud=latest")


def test_an_ecr_image_uri_is_parsed_by_digest_or_tag() -> None:
    digest = "sha256:" + "3" * 64
    by_digest = names.parse_ecr_image(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/a/b@{digest}")
    assert by_digest == names.EcrImage(ACCOUNT, "eu-west-1", "a/b", digest)
    by_tag = names.parse_ecr_image(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/a/b:1")
    assert by_tag is not None and by_tag.digest is None
    assert names.parse_ecr_image("python:3.11-slim") is None
