"""mlplatform.names against the synthesized stacks: every output the library reads is declared."""

from __future__ import annotations

from conftest import Synthesized

from mlplatform.names import IMAGES, STACK_PARTS, Output, repository_output

# CDK's own outputs for cross-stack references (Fn::ImportValue between the kit's stacks).
CDK_EXPORT = "ExportsOutput"


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
    named = {v for k, v in vars(Output).items() if k.isupper()} | {
        repository_output(image) for image in IMAGES
    }
    for part, outputs in _declared(each_env).items():
        assert outputs <= named, (part, sorted(outputs - named))
