"""R4/R5: which subject a record counts for, and its learning mode."""

from __future__ import annotations

import pandas as pd

from pipelines.rules.clean import per_unique
from pipelines.rules.config import RulesConfig
from schemas.vocabulary import PROFESSIONAL

TRAINING = "training"  # R5: every platform record is 培训进修类


def classify_subject(
    platform: pd.Series, label: pd.Series, config: RulesConfig | None = None
) -> pd.Series:
    """R4: the subject from the platform's label; null (→ `unknown_category`) when unmapped.

    Platforms in `config.all_professional_platforms` send field names (e.g. 工程技术) as labels:
    any non-empty one is professional.
    """
    config = config or RulesConfig()
    text = per_unique(label, lambda s: s.str.normalize("NFKC").str.strip())
    subject = text.map(dict(config.labels)).astype("str")
    field_names = platform.isin(config.all_professional_platforms) & text.fillna("").ne("")
    return subject.mask(field_names, PROFESSIONAL)


def classify(frame: pd.DataFrame, config: RulesConfig | None = None) -> pd.DataFrame:
    """R4 and R5 as columns `subject` and `mode`."""
    return frame.assign(
        subject=classify_subject(frame["platform"], frame["category_label"], config),
        mode=TRAINING,
    )
