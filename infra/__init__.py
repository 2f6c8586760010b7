"""The AWS side of the kit as a CDK v2 app: one stack per module under infra.stacks.

`infra.app.build_app` builds the app from validated environments (tests use it directly);
`mlplatform.release.cdk_cli` runs the pinned CDK CLI for the invoke tasks.
"""
