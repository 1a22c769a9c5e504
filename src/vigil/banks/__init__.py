"""Banks: named lists of entries an agency owns, with an append-only change log.

* ``Banks`` (``bank``): create banks and change them; every change is logged.
* ``EntryReader`` (``reader``): read entries back (matching, exports).
* ``BankIndexes`` (``indexes``): the engine's indexes kept in step with the change log.
* ``EntryRecord`` / ``Labels`` (``entry``): an entry as formats and callers write it.
"""

from vigil.banks.bank import Banks
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.model import (
    ApplyResult,
    BankError,
    BankInfo,
    BankStats,
    ReadOnlyBankError,
    StoredEntry,
    current_user,
)
from vigil.banks.reader import EntryReader

__all__ = [
    "ApplyResult",
    "BankError",
    "BankInfo",
    "BankStats",
    "Banks",
    "EntryReader",
    "EntryRecord",
    "Labels",
    "ReadOnlyBankError",
    "StoredEntry",
    "current_user",
]
