"""The risk register: read it losslessly, check it, update it safely.

:func:`read_register` parses the Markdown register into a risks table;
:func:`plan_update` computes the change for realized and new risks as a diff;
:func:`apply_update` writes it under a lock, atomically, keeping a backup;
:func:`check_register` says what was understood and what is wrong.
"""

from riskanalytics.register.parse import (
    HISTORY_COLUMNS,
    HISTORY_HEADERS,
    Register,
    RegisterCheck,
    check_register,
    read_register,
)
from riskanalytics.register.store import apply_update
from riskanalytics.register.update import (
    NewRisk,
    Realization,
    RegisterUpdate,
    created_risks,
    plan_update,
)

__all__ = [
    "HISTORY_COLUMNS",
    "HISTORY_HEADERS",
    "NewRisk",
    "Realization",
    "Register",
    "RegisterCheck",
    "RegisterUpdate",
    "apply_update",
    "check_register",
    "created_risks",
    "plan_update",
    "read_register",
]
