"""The emulated cloud's own parts: what AWS checks that the emulator (moto) does not.

    from mlplatform.emulator.policy_evaluation import Request, evaluate

`policy_evaluation` decides one request against a role's IAM policies as AWS does (explicit deny,
then allow, else implicit deny); `role_calls` lists the calls AWS makes under a role when it
starts an endpoint, a training job or an ECS task, so the emulator can refuse what AWS refuses.
"""
