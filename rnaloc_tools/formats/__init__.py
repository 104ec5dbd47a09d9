"""File formats, all in one place (DESIGN.md, "File contracts")."""

from .npz import ATTENTION_FORMAT, EmbeddingStore, EmbeddingWriter, check_same_encoder
from .sequences import read_records
from .tables import (
    DATASET_COLUMNS,
    PREDICTION_COLUMNS,
    Table,
    read_dataset,
    read_table,
    write_rows,
    write_table,
)

__all__ = [
    "ATTENTION_FORMAT",
    "DATASET_COLUMNS",
    "PREDICTION_COLUMNS",
    "EmbeddingStore",
    "EmbeddingWriter",
    "Table",
    "check_same_encoder",
    "read_dataset",
    "read_records",
    "read_table",
    "write_rows",
    "write_table",
]
