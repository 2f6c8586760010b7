"""The emulated cloud: an environment beside the local stack; what AWS checks and moto does not.

- environment.py        `invoke emulate`: the environment's registry, secrets and bucket
- policy_evaluation.py  one request decided against a role's IAM policies, as AWS does
- role_calls.py         the calls AWS makes under a role when it runs what the kit deployed
"""
