"""The MLflow server image's entrypoint: `python -m mlflow_server serve|migrate`.

The container and the native local runtime run this same code; it reads its whole configuration
from environment variables (see settings.py) and fetches credentials from Secrets Manager, so the
cloud and the local stack differ only in endpoint URLs and credentials.
"""
