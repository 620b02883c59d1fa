"""Evaluation protocols: from a dataset root and saved features to a ProtocolResult.

Which dataset uses which protocol, with its options, is said once, in the dataset table ``vireid.datasets``.
"""

from .regdb import check_regdb_protocol, evaluate_regdb, regdb_test_records
from .sysu import check_sysu_protocol, evaluate_sysu, sysu_test_records

__all__ = [
    "check_regdb_protocol",
    "check_sysu_protocol",
    "evaluate_regdb",
    "evaluate_sysu",
    "regdb_test_records",
    "sysu_test_records",
]
