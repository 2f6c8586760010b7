"""The emulated cloud: an environment beside the local stack; what AWS checks and moto does not.

- environment.py        `invoke emulate`: the environment's registry, secrets and bucket, and with
                        --account its own emulated AWS account (bootstrap, certificate)
- aws_server.py         moto's server with the fixes CDK deploys and the release chain need
                        (run as a program, `python -m mlplatform.emulator.aws_server`)
- strict_iam.py         that server refusing what AWS refuses for lack of IAM permission
- sagemaker_update_endpoint.py  UpdateEndpoint, which moto lacks
- sagemaker_runtime.py  InvokeEndpoint answered by the endpoint's model, in its image's lock
- ecr_images.py         pushed image configs kept, so an image's labels can be read
- policy_evaluation.py  one request decided against a role's IAM policies, as AWS does
- role_calls.py         the calls AWS makes under a role when it runs what the kit deployed
"""
