"""The kit's container images: built here, reproducibly, and read as the bytes a registry stores.

- engine.py       the container engine that answers (Podman or Docker) and its environment
- base.py         the base image made without a registry (debootstrap), cached in the state folder
- build.py        `invoke build`: the MLflow, training and serving images, saved as OCI archives
- oci_archive.py  an image read as an OCI layout: its manifest, blobs and registry digest
"""
