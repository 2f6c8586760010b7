"""Release to a cloud environment: `invoke deploy`'s chain and what each of its steps needs.

- chain.py        the steps in order (infra, image, migrate, service, model, endpoint)
- cdk_cli.py      the pinned CDK CLI run against infra/ (synth, diff, deploy, destroy)
- cdk_context.py  CDK context overrides folded into an Environment, checked deployable
- ecr_push.py     an image (mlplatform/images/) pushed to ECR by digest, with a release tag
- migration.py    the one-off database migration as an ECS task, recorded on success
- model.py        the gated champion released to the environment's registry
- parity.py       `invoke parity`: the local stack against a deployed environment, row by row
- admin_password.py  `invoke rotate-admin`: the MLflow admin password, in MLflow then its secret
"""
