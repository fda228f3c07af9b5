"""C1–C3: ID numbers, names, employers and course titles, as column operations.

String work runs once per distinct value (`per_unique`): a million records carry far fewer
distinct IDs, names, employers and titles, and pyarrow's kernels do the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from pipelines.rules.config import RulesConfig
from schemas.id_numbers import check_chars
from schemas.raw import TZ

ID_CORRUPTED = "id_number_corrupted"
INVALID_ID = "invalid_id_number"

_ZERO_WIDTH = r"[\x{feff}\x{200b}-\x{200d}\x{2060}\x{180e}]"
_INVISIBLE = r"[\s\x{feff}\x{200b}-\x{200d}\x{2060}\x{180e}]"
_SPREADSHEET_NUMBER = r"^[0-9]*\.[0-9]*(?:[eE][+-]?[0-9]+)?$|^[0-9.]+[eE][+-]?[0-9]+$"
_MIDDLE_DOTS = r"[\x{30fb}\x{2022}\x{2027}\x{22c5}\x{2219}\x{ff65}]"
_HAN = r"\p{Han}"
_LATIN = r"[A-Za-z]"
# C3 decoration: any 【…】, […] or 〔…〕; round brackets only around a year or a course-type tag,
# since (上)/(下) and the like tell courses apart.
_COURSE_TAGS = "公需|专业|必修|选修|新|新版|精品|直播|录播|回放|补学"
_ROUND_TAG = rf"\((?:(?:19|20)[0-9]{{2}}(?:年度?|版)?|{_COURSE_TAGS})\)"
_BRACKETS = rf"(?:【[^【】]*】|\[[^\[\]]*\]|〔[^〔〕]*〕|{_ROUND_TAG})"


def per_unique(series: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply a vectorized string function to the distinct values only, then spread back."""
    codes, uniques = pd.factorize(series)
    done = fn(pd.Series(uniques, dtype="str")).astype("str").array
    return pd.Series(done.take(codes, allow_fill=True), index=series.index)


# --- C1 ------------------------------------------------------------------------------------


def _strip_id(ids: pd.Series) -> pd.Series:
    """C1's cosmetic cleaning: NFKC, invisible characters, `'` and `="…"` wrappers, upper `X`."""
    s = ids.str.normalize("NFKC").str.replace(_INVISIBLE, "", regex=True)
    s = s.str.replace(r"^'+", "", regex=True)
    s = s.str.replace(r'^="?(.*?)"?$', r"\1", regex=True)
    s = s.str.replace(r"^'+", "", regex=True)
    return s.str.upper()


def _digit_matrix(ids: pd.Series, width: int) -> np.ndarray:
    """Strings of exactly `width` ASCII characters as a (n, width) uint8 matrix of byte values."""
    if ids.empty:
        return np.zeros((0, width), dtype=np.uint8)
    data = "".join(ids.tolist()).encode("ascii")
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, width)


def _valid_birth_dates(matrix: np.ndarray, today: dt.date, min_year: int) -> np.ndarray:
    """C1: YYYYMMDD at positions 6–13 is a real date, on or after `min_year`, not after today."""
    d = matrix[:, 6:14].astype(np.int64) - 48
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    plausible = (year >= min_year) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    months = np.where(plausible, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    following = (months + 1).astype("datetime64[D]")
    born = first + np.where(plausible, day - 1, 0).astype("timedelta64[D]")
    return plausible & (born < following) & (born <= np.datetime64(today, "D"))


def id_shape(ids: pd.Series) -> pd.Series:
    """C1's form of an ID number without judging it: cleaned, 15 digits widened to 18 with
    their check character, null when it has neither shape. Wherever `clean_id_numbers` finds a
    valid ID it is this same text, whatever the configuration, so records can be placed with
    their person before any rule runs (`pipelines.shards`)."""

    def shape(unique: pd.Series) -> pd.Series:
        s = _strip_id(unique).fillna("")
        short = s.str.fullmatch(r"[0-9]{15}")
        widened = s[short].str.slice(0, 6) + "19" + s[short].str.slice(6, 15)
        check = check_chars(_digit_matrix(widened, 17)).view("S1").astype("str")
        shaped = s.where(s.str.fullmatch(r"[0-9]{17}[0-9X]"))
        shaped[short] = widened + check
        return shaped

    return per_unique(ids, shape)


def clean_id_numbers(
    ids: pd.Series, *, config: RulesConfig | None = None, today: dt.date | None = None
) -> tuple[pd.Series, pd.Series]:
    """C1: the normalized 18-character ID (null when unusable) and the problem code, if any.

    A spreadsheet number is `id_number_corrupted`, never guessed: connectors hand a numeric
    cell over as `repr(float)` (docs/decisions.md), so float text, scientific notation and a
    `.0` suffix mark it. Plain digits ending in `000` are judged as text: a wrong one is
    `invalid_id_number`, a valid one (rare, but real) stays valid.
    """
    config = config or RulesConfig()
    today = today or pd.Timestamp.now(tz=TZ).date()

    def clean(unique: pd.Series) -> pd.DataFrame:
        s = _strip_id(unique).fillna("")
        corrupted = s.str.contains(_SPREADSHEET_NUMBER, regex=True) & s.str.contains(r"[0-9]")
        short = s.str.fullmatch(r"[0-9]{15}")
        s = s.where(~short, s.str.slice(0, 6) + "19" + s.str.slice(6, 15) + "?")
        shaped = s.str.fullmatch(r"[0-9]{17}[0-9X?]")
        matrix = _digit_matrix(s[shaped], 18)
        check = check_chars(matrix[:, :17])
        is_short = short[shaped].to_numpy()
        matrix = matrix.copy()
        matrix[is_short, 17] = check[is_short]
        ok = (
            (matrix[:, 17] == check)
            & _valid_birth_dates(matrix, today, config.min_birth_year)
            & pd.Series(matrix[:, :2].copy().view("S2").ravel())
            .str.decode("ascii")
            .isin(config.province_codes)
            .to_numpy()
        )
        fixed = pd.Series(matrix.view("S18").ravel(), index=s.index[shaped]).str.decode("ascii")
        valid = pd.Series(False, index=s.index)
        valid[shaped] = ok
        result = pd.DataFrame(
            {
                "id_number": fixed.reindex(s.index).where(valid),
                "problem": pd.Series(None, index=s.index, dtype="str"),
            }
        )
        result.loc[~valid, "problem"] = INVALID_ID
        result.loc[corrupted, "problem"] = ID_CORRUPTED
        return result

    codes, uniques = pd.factorize(ids)
    table = clean(pd.Series(uniques, dtype="str"))
    missing = pd.DataFrame({"id_number": [None], "problem": [INVALID_ID]}, dtype="str")
    table = pd.concat([table, missing], ignore_index=True)
    rows = np.where(codes >= 0, codes, len(table) - 1)
    id_number = pd.Series(table["id_number"].array.take(rows), index=ids.index)
    problem = pd.Series(table["problem"].array.take(rows), index=ids.index)
    return id_number, problem


# --- C2 ------------------------------------------------------------------------------------


def clean_names(names: pd.Series) -> pd.Series:
    """C2: NFKC, no spaces inside Han names, one middle dot (U+00B7); traditional kept (於)."""

    def clean(s: pd.Series) -> pd.Series:
        s = s.str.normalize("NFKC").str.replace(_ZERO_WIDTH, "", regex=True)
        latin = s.str.contains(_LATIN, regex=True)
        s = s.where(latin, s.str.replace(r"\s+", "", regex=True))
        s = s.where(~latin, s.str.replace(r"\s+", " ", regex=True).str.strip())
        s = s.str.replace(_MIDDLE_DOTS, "·", regex=True)
        for _ in range(2):  # overlapping matches: 阿.卜.杜 needs a second pass
            s = s.str.replace(f"({_HAN})\\.({_HAN})", r"\1·\2", regex=True)
        return s

    return per_unique(names, clean)


def name_conflicts(ledger: pd.DataFrame) -> pd.DataFrame:
    """C2: IDs seen with more than one cleaned name, names sorted and joined by `|`."""
    seen = ledger.loc[ledger["id_number"].notna() & ledger["name"].fillna("").ne("")]
    pairs = seen[["id_number", "name"]].drop_duplicates().sort_values(["id_number", "name"])
    many = pairs.loc[pairs["id_number"].duplicated(keep=False)]
    joined = many.groupby("id_number", sort=True)["name"].agg("|".join)
    return pd.DataFrame(
        {"id_number": joined.index.astype("str"), "names": joined.to_numpy()}
    ).astype({"id_number": "str", "names": "str"})


# --- C3 ------------------------------------------------------------------------------------


def shown_text(text: pd.Series) -> pd.Series:
    """C3: what people see keeps its full-width brackets; only outer whitespace goes."""
    return per_unique(text, lambda s: s.str.strip())


def employer_key(employers: pd.Series) -> pd.Series:
    """C3: the matching key of an employer name (NFKC, no whitespace, case-folded)."""
    return per_unique(
        employers,
        lambda s: s.str.normalize("NFKC").str.replace(_INVISIBLE, "", regex=True).str.casefold(),
    )


def course_key(titles: pd.Series) -> pd.Series:
    """C3/D3: NFKC, whitespace and leading/trailing bracket decoration removed, case-folded."""

    def clean(s: pd.Series) -> pd.Series:
        s = s.str.normalize("NFKC").str.replace(_INVISIBLE, "", regex=True)
        for _ in range(2):  # e.g. 【2022】【公需】 or a tag at each end
            s = s.str.replace(f"^{_BRACKETS}", "", regex=True)
            s = s.str.replace(f"{_BRACKETS}$", "", regex=True)
        return s.str.casefold()

    return per_unique(titles, clean)
