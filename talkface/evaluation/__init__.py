"""`talkface evaluate`: test trained checkpoints of both stages, and both chained, on one prepared
split, next to the trivial baselines; one markdown report and one JSON file."""

from talkface.evaluation.report import Column, Row, markdown_report, markdown_table
from talkface.evaluation.runner import (
    Checkpoint,
    Evaluation,
    Loaded,
    Settings,
    evaluate,
    load_all,
    parse_checkpoint,
    read_meta,
)

__all__ = [
    "Checkpoint",
    "Column",
    "Evaluation",
    "Loaded",
    "Row",
    "Settings",
    "evaluate",
    "load_all",
    "markdown_report",
    "markdown_table",
    "parse_checkpoint",
    "read_meta",
]
