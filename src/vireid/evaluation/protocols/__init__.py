"""Evaluation protocols: from a dataset root and saved features to a ProtocolResult."""

from .regdb import evaluate_regdb, regdb_test_records
from .sysu import evaluate_sysu, sysu_test_records

PROTOCOLS = ("sysu", "regdb")

__all__ = ["PROTOCOLS", "evaluate_regdb", "evaluate_sysu", "regdb_test_records", "sysu_test_records"]
