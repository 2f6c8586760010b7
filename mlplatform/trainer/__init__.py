"""Training from the kit's side.

Input channels, the runners (native, local-container, sagemaker), and the promotion gate that
moves the `champion` alias.
"""
