"""Release to a cloud environment: `invoke deploy`'s chain and what each of its steps needs.

- chain.py        the steps in order (infra, image, migrate, service, model, endpoint)
- cdk_cli.py      the pinned CDK CLI run against infra/ (synth, diff, deploy, destroy)
- cdk_context.py  CDK context overrides folded into an Environment, checked deployable
- oci_image.py    a container image read as an OCI layout (its bytes and digests)
- ecr_push.py     those bytes pushed to ECR through its API, by digest, with a release tag
- migration.py    the one-off database migration as an ECS task, recorded on success
- model.py        the gated champion released to the environment's registry
"""
