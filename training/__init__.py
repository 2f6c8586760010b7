"""The example training job: an imbalanced fraud classifier, run under SageMaker's contract.

The same entry point (`python -m training`, or the image's `train` program) runs natively against
the local stack, in a container in SageMaker local mode, and as a SageMaker training job. It
imports nothing from the kit (mlplatform/): the training image ships only this package.
"""
