"""Rebuild a registered version from its recorded lineage and compare it with the record."""

from mlplatform.reproduce.rebuild import EXPERIMENT_SUFFIX, reproduce
from mlplatform.reproduce.verdict import Report

__all__ = ["EXPERIMENT_SUFFIX", "Report", "reproduce"]
