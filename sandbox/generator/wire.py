"""From spec rows to what platforms hold: ID numbers and names as shown, hours as on the wire,
source and record keys, pull years; and, beside them, each version's true outcome.

A spec row is one version of one record, mostly numbers: `person` (into the people frame),
`rec` (the record) and `version`, `epoch`, `withdrawn`; `platform` and the course, label, wire,
certificate and outcome texts as categoricals; `id_quirk`/`name_form` as codes into
ID_QUIRKS_ALL/NAME_FORMS; times, hours, minutes, pass mark, score, makeup; and the outcome were
it the latest version: `t_state`, `t_reason`, `t_credited`, `t_trimmed`, `t_year`,
`t_merged_rec`. Strings are only built here, once, from small dictionaries: a million rows of
pandas string work would cost minutes, a dictionary lookup per column costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.generator.base import COURSE_FIELDS, ID_QUIRKS_ALL, NAME_FORMS
from sandbox.generator.people import CHECK_CHARS, DOT_VARIANTS, MIDDLE_DOT, with_check
from sandbox.profiles import Catalogue
from schemas.ledger import COMPLETION_DTYPES
from schemas.raw import RAW_DTYPES, natural_key

EXTRA_DTYPES: dict[str, str] = {
    "record_key": "str",
    "epoch": "int64",
    "wire_hours": "str",
    "wire_id_numeric": "bool",
    "hidden_until_paged": "bool",
    "wire_field": "str",  # huaxue 所属领域 of the course; null elsewhere
}
RECORD_DTYPES: dict[str, str] = {
    **{c: t for c, t in RAW_DTYPES.items() if c not in ("payload", "pulled_at")},
    **EXTRA_DTYPES,
}
OUTCOME_DTYPES: dict[str, str] = {
    **{c: t for c, t in COMPLETION_DTYPES.items() if c not in ("first_seen_at", "last_seen_at")},
    "source_key": "str",
    "pull_year": "int64",
    "rec": "int64",  # the record's number, for selecting versions without string work
}
CATEGORICAL_SPEC: tuple[str, ...] = (
    *COURSE_FIELDS,
    "wire_hours",
    "certificate_no",
    "t_state",
    "t_reason",
)
INVALID_ID_QUIRKS = frozenset({"bad_check", "bad_birth", "bad_province", "numeric"})
HIDDEN_PER_YEAR = 2  # records per platform-year (spa) that arrive while a pull pages
_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_WRONG_CHECK = dict(zip(CHECK_CHARS, np.roll(CHECK_CHARS, -1), strict=True))


def id_forms(ids: pd.Series, quirk: pd.Series) -> pd.Series:
    """The ID number as a platform shows it: valid quirks C1 cleans, or invalid forms."""
    forms = {
        "quote": lambda s: "'" + s,
        "tab": lambda s: "\t" + s,
        "wrap": lambda s: '="' + s + '"',
        "space": lambda s: " " + s + " ",
        "zero_width": lambda s: "\u200b" + s,
        "fullwidth": lambda s: s.str.translate(_FULLWIDTH),
        "lower_x": lambda s: s.str.lower(),
        "fifteen": lambda s: s.str[:6] + s.str[8:17],
        "bad_check": lambda s: s.str[:17] + s.str[17].map(_WRONG_CHECK),
        "bad_birth": lambda s: with_check(s.str[:10] + "0230" + s.str[14:17]),
        "bad_province": lambda s: with_check("99" + s.str[2:17]),
        # a spreadsheet keeps 15 significant digits: 3.70902198801011e+17
        "numeric": lambda s: pd.Series(
            [repr(float(f"{float(v):.15g}")) for v in s], index=s.index, dtype="str"
        ),
    }
    shown = ids.copy()
    for name, form in forms.items():
        mask = quirk == name
        if mask.any():
            shown[mask] = form(ids[mask])
    return shown


def spellings(canonical: pd.Series, alt: pd.Series, form: pd.Series) -> pd.Series:
    """The name as a record shows it: a middle-dot variant, a space inside, or a conflict."""
    shown = canonical.copy()
    spaced = form == "space"
    shown[spaced] = canonical[spaced].str[:1] + " " + canonical[spaced].str[1:]
    for dot in DOT_VARIANTS:
        mask = form == f"dot:{dot}"
        shown[mask] = canonical[mask].str.replace(MIDDLE_DOT, dot, regex=False)
    conflict = form == "alt"
    shown[conflict] = alt[conflict]
    return shown


def wire_hours(hours: pd.Series, minutes: pd.Series, style: pd.Series) -> pd.Series:
    """Hours as each family writes them (`FamilyProfile.hours`): `2.0` (decimal), `1.5`/`2`
    (text), `90` (minutes), `3学时` (xueshi)."""
    tenths = np.round(hours.fillna(0).to_numpy() * 10).astype(np.int64)
    whole = pd.Series(tenths // 10, index=hours.index).astype("str")
    fraction = pd.Series(tenths % 10, index=hours.index)
    decimal = whole + "." + fraction.astype("str")
    short = decimal.where(fraction != 0, whole)
    return pd.Series(
        np.select(
            [style == "minutes", style == "xueshi", style == "text"],
            [minutes.astype("str"), short + "学时", short],
            decimal,
        ),
        index=hours.index,
        dtype="str",
    )


def stack(base: pd.DataFrame, scenarios: pd.DataFrame, platforms: Catalogue) -> pd.DataFrame:
    """Base and scenario spec rows as one frame, strings kept as categoricals with shared
    categories (concatenating differing ones would fall back to a Python object per row)."""
    scenarios = scenarios.copy()
    scenarios["platform"] = pd.Categorical(scenarios["platform"], categories=platforms.index)
    scenarios["id_quirk"] = pd.Index(ID_QUIRKS_ALL).get_indexer(scenarios["id_quirk"])
    scenarios["name_form"] = pd.Index(NAME_FORMS).get_indexer(scenarios["name_form"])
    base = base.copy()
    for name in CATEGORICAL_SPEC:
        ours = scenarios[name].astype("str").astype("category")
        union = base[name].cat.categories.union(ours.cat.categories, sort=False)
        base[name] = base[name].cat.set_categories(union)
        scenarios[name] = ours.cat.set_categories(union)
    return pd.concat([base, scenarios[list(base.columns)]], ignore_index=True)


@dataclass(frozen=True)
class Coded:
    """A string column as a small dictionary and a code per row (negative: null), so that
    reordering and selecting rows never moves a string."""

    dictionary: np.ndarray
    codes: np.ndarray

    @classmethod
    def of(cls, values: pd.Series) -> Coded:
        """From a categorical spec column."""
        return cls(_objects(values.cat.categories), values.cat.codes.to_numpy().astype(np.int64))

    def strings(self, rows: np.ndarray | None = None) -> pa.Array:
        codes = self.codes if rows is None else self.codes[rows]
        table = pa.array(self.dictionary, pa.string())
        return table.take(pa.array(codes, mask=codes < 0))


def _objects(values: pd.Index | pd.Series | np.ndarray | list[str]) -> np.ndarray:
    return pd.Series(np.asarray(values, dtype=object)).to_numpy(dtype=object, na_value=None)


def column(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(values, dtype="str")


def source_keys(first: pd.DataFrame, style: np.ndarray, raw_id: Coded, title: Coded) -> np.ndarray:
    """Source keys of first versions: record ids where the platform has them (`style`, its
    profile's `record_ids`), else natural keys (docs/decisions.md) of the values as shown.
    `raw_id`/`title` are coded per first version."""
    keys = np.empty(len(first), dtype=object)
    rec = first["rec"].to_numpy()
    numbered = style == "numbered"
    keys[numbered] = (rec[numbered] + 100_000_000).astype(str)
    hashed = style == "hashed"
    mixed = (rec[hashed].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) & np.uint64(2**48 - 1)
    keys[hashed] = [f"c_{v:012x}" for v in mixed.tolist()]  # odd multiplier: distinct ids
    listed = style == "listed"
    order = first.loc[listed, ["platform", "pull_year", "completed_at", "rec"]].sort_values(
        ["platform", "pull_year", "completed_at", "rec"], na_position="last"
    )
    ids = order.groupby("platform", observed=True).cumcount() + 1001
    keys[first.index.get_indexer(order.index)] = ids.to_numpy().astype(str)
    natural = np.flatnonzero(~(numbered | hashed | listed))
    day = first["completed_at"].to_numpy().astype("datetime64[D]")[natural]
    days, inverse = np.unique(day, return_inverse=True)
    labels = pd.Series(pd.to_datetime(days).strftime("%Y-%m-%d")).fillna("")
    dates = pd.Series(labels.to_numpy()[inverse], dtype="str")
    parts = [column(raw_id.strings(natural)), column(title.strings(natural)), dates]
    keys[natural] = natural_key(parts).to_numpy(dtype=object)
    return keys


def _pairs(owner: np.ndarray, variant: np.ndarray, variants: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (owner, variant) pairs and each row's pair number."""
    return np.unique(owner * variants + variant, return_inverse=True)


def _wire_hours(spec: pd.DataFrame, platform: np.ndarray, style: np.ndarray) -> Coded:
    """Explicit wire values where a scenario gives one, else the family's rendering of the hours."""
    hours = spec["hours"].to_numpy()
    minutes = spec["minutes"].to_numpy()
    amount = np.where(style == "minutes", minutes, np.round(np.nan_to_num(hours) * 10))
    _, first_of, inverse = np.unique(
        platform * 100_000 + amount.astype(np.int64), return_index=True, return_inverse=True
    )
    derived = wire_hours(
        pd.Series(hours[first_of]), pd.Series(minutes[first_of]), pd.Series(style[first_of])
    )
    explicit = Coded.of(spec["wire_hours"])
    codes = np.where(explicit.codes >= 0, explicit.codes, len(explicit.dictionary) + inverse)
    return Coded(np.concatenate([explicit.dictionary, _objects(derived)]), codes)


def _certificates(
    spec: pd.DataFrame, platform: np.ndarray, rows: np.ndarray, prefix: np.ndarray
) -> pa.Array:
    """Base certificates from their serial numbers (one per record, behind the platform's
    `prefix`), scenario ones as given."""
    serial = spec["cert_serial"].to_numpy()[rows]
    prefixes = Coded(prefix, platform[rows])
    numbers = pc.cast(pa.array(serial), pa.string())
    built = pc.binary_join_element_wise(prefixes.strings(), numbers, "")
    given = Coded.of(spec["certificate_no"]).strings(rows)
    return pc.if_else(pa.array(serial >= 0), built, given)


def finish(
    spec: pd.DataFrame, people: pd.DataFrame, platforms: Catalogue
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records (one row per version, as platforms hold them) and their outcomes, aligned,
    ordered by record key and version."""
    n_people = len(people)
    person = spec["person"].to_numpy()
    platform = spec["platform"].cat.codes.to_numpy().astype(np.int64)
    codes = np.array(platforms.codes, dtype=object)
    rec = spec["rec"].to_numpy()
    version = spec["version"].to_numpy()

    quirk = spec["id_quirk"].to_numpy()
    pairs, inverse = _pairs(person, quirk, len(ID_QUIRKS_ALL))
    shown_ids = id_forms(
        people["id_number"].iloc[pairs // len(ID_QUIRKS_ALL)].reset_index(drop=True),
        pd.Series(np.array(ID_QUIRKS_ALL)[pairs % len(ID_QUIRKS_ALL)], dtype="str"),
    )
    raw_id = Coded(_objects(shown_ids), inverse)
    form = spec["name_form"].to_numpy()
    pairs, inverse = _pairs(person, form, len(NAME_FORMS))
    owners = pairs // len(NAME_FORMS)
    shown_names = spellings(
        people["name"].iloc[owners].reset_index(drop=True),
        people["alt_name"].iloc[owners].reset_index(drop=True),
        pd.Series(np.array(NAME_FORMS)[pairs % len(NAME_FORMS)], dtype="str"),
    )
    name = Coded(_objects(shown_names), inverse)
    employer = Coded(_objects(people["employer"].str.strip()), person)
    wire = _wire_hours(spec, platform, platforms.fact("hours")[platform])

    completed = spec["completed_at"]
    local = completed.dt.tz_localize(None).to_numpy()  # wall-clock times, NaT where unfinished
    updating = platforms.fact("updating")[platform]
    completed_year = completed.dt.year.to_numpy(dtype="float64", na_value=np.nan)
    own_year = np.where(np.isnan(completed_year), spec["start_year"], completed_year)
    update_year = spec["updated_at"].dt.year.to_numpy(dtype="float64", na_value=np.nan)
    pull_year = np.where(updating, update_year, own_year).astype(np.int64)

    title = Coded.of(spec["course_title"])
    first_rows = np.flatnonzero(version == 0)
    first = pd.DataFrame(
        {
            "rec": rec[first_rows],
            "platform": platform[first_rows],
            "pull_year": pull_year[first_rows],
            "completed_at": local[first_rows],
        }
    )
    keys = source_keys(
        first,
        platforms.fact("record_ids")[platform[first_rows]],
        Coded(raw_id.dictionary, raw_id.codes[first_rows]),
        Coded(title.dictionary, title.codes[first_rows]),
    )
    n_recs = rec.max() + 1
    by_rec = np.empty(n_recs, dtype=object)
    by_rec[rec[first_rows]] = keys
    platform_by_rec = np.zeros(n_recs, dtype=np.int64)
    platform_by_rec[rec] = platform
    record_keys = pc.binary_join_element_wise(
        Coded(codes, platform_by_rec).strings(),
        pa.array(by_rec, pa.string()),
        ":",
    )
    by_key = pc.sort_indices(record_keys).to_numpy()
    rank = np.empty(n_recs, dtype=np.int64)
    rank[by_key] = np.arange(n_recs)
    order = np.lexsort((version, rank[rec]))
    sorted_keys = pa.array(by_rec[by_key], pa.string())
    sorted_record_keys = record_keys.take(pa.array(by_key))
    position = pa.array(rank[rec[order]])  # non-decreasing: cheap takes from sorted keys
    snapshot = platforms.fact("snapshot")[platform]
    vanished = (spec["withdrawn"].to_numpy() & snapshot)[order]
    gone = pa.array(vanished)

    def shown(values: pa.Array) -> pd.Series:
        if vanished.any():
            values = pc.if_else(gone, pa.scalar(None, pa.string()), values)
        return column(values)

    def ordered(name: str) -> pd.Series:
        values = spec[name].iloc[order].reset_index(drop=True)
        return values.mask(vanished) if vanished.any() else values

    record_key = column(sorted_record_keys.take(position))
    hidden = _hidden(spec, platforms.fact("shifting_pages")[platform], pull_year, by_rec)
    prefixes = platforms.each(lambda p: p.cert_prefix)
    certificate = _certificates(spec, platform, order, prefixes)
    shown_codes = Coded(codes, platform[order])
    records = pd.DataFrame(
        {
            "platform": column(shown_codes.strings()),
            "source_key": column(sorted_keys.take(position)),
            "raw_id": shown(raw_id.strings(order)),
            "name": shown(name.strings(order)),
            "employer": shown(employer.strings(order)),
            "course_code": shown(Coded.of(spec["course_code"]).strings(order)),
            "course_title": shown(title.strings(order)),
            "category_label": shown(Coded.of(spec["category_label"]).strings(order)),
            "hours": ordered("hours"),
            "completed_at": ordered("completed_at"),
            "passed": ordered("passed"),
            "score": ordered("score"),
            "certificate_no": shown(certificate),
            "makeup": spec["makeup"].to_numpy()[order] & ~vanished,
            "makeup_year": ordered("makeup_year"),
            "updated_at": ordered("updated_at"),
            "withdrawn": spec["withdrawn"].to_numpy()[order],
            "pull_year": pull_year[order],
            "record_key": record_key,
            "epoch": spec["epoch"].to_numpy()[order],
            "wire_hours": shown(wire.strings(order)),
            "wire_id_numeric": quirk[order] == ID_QUIRKS_ALL.index("numeric"),
            "hidden_until_paged": hidden[order],
            "wire_field": shown(Coded.of(spec["wire_field"]).strings(order)),
        }
    )
    invalid = np.isin(quirk, [ID_QUIRKS_ALL.index(q) for q in INVALID_ID_QUIRKS])
    alt = form == NAME_FORMS.index("alt")
    merged = spec["t_merged_rec"].fillna(-1).to_numpy(dtype=np.int64)[order]
    merged_rank = np.where(merged >= 0, rank[np.maximum(merged, 0)], -1)
    cities = platforms.each(lambda p: p.city).astype(object)
    names = np.concatenate([_objects(people["name"]), _objects(people["alt_name"])])
    outcomes = pd.DataFrame(
        {
            "record_key": record_key,
            "platform": records["platform"],
            "city": column(Coded(cities, platform[order]).strings()),
            "id_number": column(
                Coded(_objects(people["id_number"]), np.where(invalid, -1, person)).strings(order)
            ),
            "name": column(Coded(names, person + n_people * alt).strings(order)),
            "employer": column(employer.strings(order)),
            "course_title": column(title.strings(order)),
            "course_key": column(Coded.of(spec["course_key"]).strings(order)),
            "subject": column(Coded.of(spec["subject"]).strings(order)),
            "mode": "training",
            "completed_at": spec["completed_at"].iloc[order].reset_index(drop=True),
            "credited_year": spec["t_year"].iloc[order].reset_index(drop=True),
            "makeup": spec["makeup"].to_numpy()[order],
            "hours_reported": spec["hours"].to_numpy()[order],
            "hours_credited": spec["t_credited"].to_numpy()[order],
            "hours_trimmed": spec["t_trimmed"].to_numpy()[order],
            "certificate_no": column(certificate),
            "state": column(Coded.of(spec["t_state"]).strings(order)),
            "reason": column(Coded.of(spec["t_reason"]).strings(order)),
            "merged_into": column(
                sorted_record_keys.take(pa.array(merged_rank, mask=merged_rank < 0))
            ),
            "source_key": records["source_key"],
            "pull_year": records["pull_year"],
            "rec": rec[order],
        }
    )
    return records.astype(RECORD_DTYPES), outcomes.astype(OUTCOME_DTYPES)


def _hidden(
    spec: pd.DataFrame, shifting: np.ndarray, pull_year: np.ndarray, keys: np.ndarray
) -> np.ndarray:
    """The newest few records of each platform-year where offset pages shift (spa): they
    arrive while a pull pages."""
    rows = np.flatnonzero(shifting & (spec["epoch"].to_numpy() == 0))
    ids = pd.Series(keys[spec["rec"].to_numpy()[rows]].astype(np.int64))
    platform = spec["platform"].cat.codes.to_numpy()[rows]
    rank = ids.groupby([platform, pull_year[rows]]).rank(ascending=False, method="first")
    hidden = np.zeros(len(spec), dtype=bool)
    hidden[rows[(rank <= HIDDEN_PER_YEAR).to_numpy()]] = True
    return hidden
