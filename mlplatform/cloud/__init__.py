"""Cloud access: boto3 clients and the deployed stacks' outputs, for AWS or an emulator alike.

- aws.py            boto3 clients (AWS_ENDPOINT_URL points them at an emulator), secrets, seeding
- stack_outputs.py  a deployed stack's status and CloudFormation outputs, refused in one line
"""
