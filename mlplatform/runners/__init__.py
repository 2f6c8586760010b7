"""Training runners: one training job, run the way SageMaker runs it, with three runners.

- train.py            `invoke data`/`invoke train`: upload the channels, run a runner
- request.py          what a run is asked to do and what it returns
- datasets.py         the example's channels, generated deterministically
- native.py           SageMaker's container contract emulated in a temporary /opt/ml
- local_container.py  the training image under the SageMaker SDK's local mode
- local_mode_job.py   the local-mode job itself, run in the SDK's own environment
- sagemaker.py        a real SageMaker training job through boto3
"""
