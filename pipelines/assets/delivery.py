"""What the pipeline delivers: the provincial import files and the units' form results."""

import dagster as dg
import pandas as pd

from pipelines.forms import (
    RESULT_LEDGER_COLUMNS,
    update_results,
)
from pipelines.provincial import update_provincial
from pipelines.resources import Database, FormsFolder, ProvincialOutput
from schemas.platforms import FORMS

# --- provincial files -----------------------------------------------------------------------


@dg.asset(
    group_name="delivery",
    deps=["completion", "hours_bank"],
    description="学时登记 and 学员 XLSX per employer and year, with a manifest (PROVINCIAL.md).",
    kinds={"xlsx"},
)
def provincial_files(
    context: dg.AssetExecutionContext, database: Database, output: ProvincialOutput
) -> dg.MaterializeResult:
    store = database.hold_writes(context)
    manifest = update_provincial(store, output.path(), store.output_years())
    return dg.MaterializeResult(
        metadata={
            "output_dir": dg.MetadataValue.path(str(output.path() / "provincial")),
            "files": manifest.file_count,
            "rows": manifest.row_count,
            "years": manifest.years,
            "years_compared": list(manifest.compared),
        }
    )


@dg.asset(
    group_name="delivery",
    deps=["completion"],
    description="Per unit and year, its form rows as submitted with 结果 and 原因 (FORMS.md).",
    kinds={"xlsx"},
)
def form_results(
    database: Database, output: ProvincialOutput, forms_folder: FormsFolder
) -> dg.MaterializeResult:
    store = database.store()
    folder = forms_folder.path()

    def read(year: int) -> pd.DataFrame:
        return store.read_table(
            "completion",
            columns=RESULT_LEDGER_COLUMNS,
            where=(f"platform = '{FORMS}' AND pull_year = {int(year)}",),
        )

    years = sorted(int(p.name) for p in folder.glob("[0-9][0-9][0-9][0-9]") if p.is_dir())
    files = update_results(folder, output.path(), years, read)
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "written": sum(f.written for f in files),
            "rows": sum(f.rows for f in files),
            "years": years,
        }
    )
