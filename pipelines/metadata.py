"""What assets and checks show in Dagster's UI: column schemas, small tables, masked previews."""

import dagster as dg
import pandas as pd

from schemas.descriptions import COLUMN_DESCRIPTIONS
from schemas.privacy import mask_ids


def table_schema(dtypes: dict[str, str]) -> dg.TableSchema:
    """Columns with their types and what they mean (`schemas.descriptions`)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, str(t), description=COLUMN_DESCRIPTIONS[name])
            for name, t in dtypes.items()
        ]
    )


def markdown_table(frame: pd.DataFrame) -> str:
    """A small frame as a Markdown table (metadata only; never a hot path)."""
    if frame.empty:
        return "(no rows)"
    cells = frame.astype("str").fillna("").replace("|", "\\|", regex=False)
    lines = [" | ".join(frame.columns), " | ".join("---" for _ in frame.columns)]
    lines += [" | ".join(row) for row in cells.itertuples(index=False)]
    return "\n".join(f"| {line} |" for line in lines)


def masked_preview(frame: pd.DataFrame, id_columns: tuple[str, ...], rows: int = 5) -> str:
    """A few rows with ID numbers masked (C6) and the bulky payload left out."""
    preview = frame.head(rows).drop(columns=["payload"], errors="ignore").copy()
    for column in id_columns:
        if column in preview:
            preview[column] = mask_ids(preview[column])
    return markdown_table(preview)
