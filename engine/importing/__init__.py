"""Customer and invoice import from CSV or JSON Lines (and the API's records): streamed into a
staging table, checked in SQL, written set-based, all or nothing.

- reading: files and lists as records with row numbers (Source)
- cells: one cell parsed into its column's value
- shapes: a record as a staging row, per kind (customers, invoices)
- staging: the TEMP table, duplicate ids
- setbased: the audit, UPDATE and INSERT from the stage
- run: the import itself; progress: the terminal's progress bar
- rowwise: the row-at-a-time helpers event ingest and the demo seed share
"""

from engine.importing.cells import (
    RowError,
    _blank,
    attribute_value,
    parse_amount,
    parse_bool,
    parse_date,
    parse_text,
    parse_timezone,
)
from engine.importing.reading import Source, from_file, from_list, read_records
from engine.importing.rowwise import BATCH, Located, _existing, batched, checked_row, upsert
from engine.importing.run import (
    ImportResult,
    import_customers,
    import_invoices,
    upsert_customers,
    upsert_invoices,
)

__all__ = [
    "BATCH", "ImportResult", "Located", "RowError", "Source", "_blank", "_existing",
    "attribute_value", "batched", "checked_row", "from_file", "from_list", "import_customers",
    "import_invoices", "parse_amount", "parse_bool", "parse_date", "parse_text",
    "parse_timezone", "read_records", "upsert", "upsert_customers", "upsert_invoices",
]
