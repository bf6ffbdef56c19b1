"""The evaluation's tables: which metric goes in which column, and how a value is written.

Kept free of torch and Lightning so the formatting can be tested (and read) on its own. A value
that does not exist — a baseline has no word accuracy, clips without word labels have none
either (NaN from 0/0) — is written "–", never 0. A value that is perfect by construction (the
photo compared with itself) is written with a dagger and never ranked.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

MISSING = "–"
TRIVIAL = "†"  # after a value that is perfect by construction (explained in the table's caption)


@dataclass(frozen=True)
class Column:
    key: str  # the metric name without its "test/" prefix
    title: str
    higher_is_better: bool
    digits: int = 3
    percent: bool = False
    bold_best: bool = True  # False for reference columns that do not rank the rows


STAGE1_COLUMNS = (
    Column("lmd_mouth", "mouth LMD (px)", False),
    Column("lmd_face", "face LMD (px)", False),
    Column("velocity_error", "velocity error (px/frame)", False),
    Column("word_acc_predicted", "word acc. (predicted landmarks)", True, digits=1, percent=True),
    # The detector on the true landmarks: the ceiling of the column before, not a score of the row.
    Column("word_acc_true", "word acc. (true landmarks)", True, digits=1, percent=True, bold_best=False),
)
FRAME_COLUMNS = (
    Column("lmd_mouth", "mouth LMD, re-detected (px)", False),
    Column("mouth_psnr", "mouth PSNR (dB)", True, digits=2),
    Column("mouth_ssim", "mouth SSIM", True),
    Column("psnr", "PSNR (dB)", True, digits=2),
    Column("ssim", "SSIM", True),
)
REAL_FACE_COLUMNS = (  # issue 13's metrics on real faces, scored end to end
    Column("mouth_open_corr", "mouth-opening corr.", True),
    Column("upper_face_psnr", "upper-face PSNR vs photo (dB)", True, digits=2),
    # 1 = as sharp as the photo; above 1 may be noise as well as detail, so the rows are not ranked.
    Column("sharpness_ratio", "sharpness ratio (face, vs photo)", True, bold_best=False),
    # Of the generated frames, those in which the re-detection found a face at all.
    Column("face_found", "face found", True, digits=1, percent=True, bold_best=False),
)
END_TO_END_COLUMNS = FRAME_COLUMNS + REAL_FACE_COLUMNS
LIP_SYNC_COLUMNS = (  # issue 14: a sync expert on every frame of the clips, end to end
    Column("lse_d", "LSE-D", False),
    Column("lse_c", "LSE-C", True),
    Column("offset", "AV offset, absolute (frames)", False, digits=2),
    Column("in_sync", "in sync (±1 frame)", True, digits=1, percent=True),
)
TABLES = {  # key in the JSON: (heading, columns)
    "stage1": ("Stage 1: audio → landmarks", STAGE1_COLUMNS),
    "stage2": ("Stage 2: true landmarks → frames", FRAME_COLUMNS),
    "end_to_end": ("End to end: audio → predicted landmarks → frames", END_TO_END_COLUMNS),
    "lip_sync": ("Lip sync, end to end: every frame under the clip's sound", LIP_SYNC_COLUMNS),
}


@dataclass
class Row:
    name: str
    metrics: dict[str, float | None]
    baseline: bool = False
    checkpoints: dict[str, str] = field(default_factory=dict)  # {"landmark": path, "generator": path}
    seconds: float | None = None
    # per metric, the clips or frames behind its value ({"mouth_open_corr": {"clips": 8, ...}})
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    trivial: tuple[str, ...] = ()  # metrics whose value is perfect by construction (shown with a dagger)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "baseline": self.baseline,
            "checkpoints": self.checkpoints,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "metrics": {k: clean(v) for k, v in self.metrics.items()},
            "counts": self.counts,
            "trivial": list(self.trivial),
        }


def clean(value) -> float | None:
    """A JSON-safe number: None for missing or NaN (JSON has no NaN), floats otherwise."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def format_value(value, column: Column) -> str:
    value = clean(value)
    if value is None:
        return MISSING
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if column.percent:
        return f"{100 * value:.{column.digits}f} %"
    return f"{value:.{column.digits}f}"


def markdown_table(rows: list[Row], columns: tuple[Column, ...]) -> str:
    """One markdown table; the best value of each ranking column is bold when two or more rows have one
    (values perfect by construction are marked with a dagger and take no part in the ranking)."""
    cells = [
        [format_value(row.metrics.get(c.key), c) + (f" {TRIVIAL}" if c.key in row.trivial else "") for c in columns]
        for row in rows
    ]
    for index, column in enumerate(columns):
        values = [clean(row.metrics.get(column.key)) for row in rows if column.key not in row.trivial]
        present = [v for v in values if v is not None]
        if not column.bold_best or len(present) < 2:
            continue
        best = format_value(max(present) if column.higher_is_better else min(present), column)
        for line in cells:
            if line[index] == best:
                line[index] = f"**{best}**"
    lines = ["| | " + " | ".join(c.title for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row.name} | " + " | ".join(line) + " |" for row, line in zip(rows, cells, strict=False)]
    return "\n".join(lines)


def markdown_report(tables: dict[str, list[Row]], captions: dict[str, str], title: str, footer: str = "") -> str:
    parts = [f"# {title}"]
    for key, rows in tables.items():
        if not rows:
            continue
        heading, columns = TABLES[key]
        parts += [f"## {heading}", captions.get(key, ""), markdown_table(rows, columns)]
    if footer:
        parts.append(footer)
    return "\n\n".join(p for p in parts if p) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary sibling, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def captions(
    data: str,
    split: str,
    clips: int,
    total_clips: int,
    layout: str,
    labelled: bool,
    frame_stride: int,
    crop_size: int,
    box_fraction: float,
    generator: str | None,
    sync_expert: str | None = None,
) -> dict[str, str]:
    """What each table measured, in words: the clips, the frames and the units."""
    subset = f"the first {clips} of {total_clips}" if clips < total_clips else f"all {clips}"
    where = f"{subset} `{split}` clips of `{data}` ({layout} layout{'' if labelled else ', no word labels'})"
    frames = (
        f"every {_ordinal(frame_stride)} frame from frame 1 (frame 0 is the reference)"
        if frame_stride > 1
        else "every frame but frame 0 (the reference)"
    )
    box = round(box_fraction * crop_size)
    frame_units = (
        f"mouth PSNR/SSIM on a {box} px box around the true mouth of the {crop_size} px crop; mouth LMD from "
        f"landmarks re-detected by dlib on the frames, in pixels of a 256×256 crop"
    )
    return {
        "stage1": (
            f"On {where}. LMD: mean distance per point after centring each set (mouth 48–67, face 0–67), in "
            f"pixels of a 256×256 aligned crop; velocity error: of the mouth, px/frame; word accuracy: the model's "
            f"own word detector on the predicted (or true) landmark sequence, over labelled clips (–: none). "
            f"Baseline: the first frame's landmarks held still."
        ),
        "stage2": (
            f"On the same clips, the generator drawing each frame from the first frame and the *true* landmarks; "
            f"{frames}; {frame_units}, against the landmarks the frames were drawn from."
        ),
        "end_to_end": (
            f"The same frames drawn by {generator or 'the generator'} from the landmarks each stage-1 model "
            f"predicts from the clip's audio and first-frame landmarks; {frame_units}, against the true landmarks. "
            f"{REAL_FACE_CAPTION}"
        ),
        "lip_sync": lip_sync_caption(sync_expert, generator) if sync_expert else "",
    }


def lip_sync_caption(expert: str, generator: str | None) -> str:
    return (
        f"Measured by **{expert}** (scores of another expert are not comparable) on *every* frame of the same "
        f"clips, 5 consecutive frames and their 0.2 s of sound per centre frame, over audio-video offsets of "
        f"±15 frames: per clip, the mean embedding distance at each offset; LSE-D = its minimum (lower: lips and "
        f"sound agree better), LSE-C = its median minus its minimum (higher: a clearer match); AV offset = "
        f"the distance of the minimum from offset 0, in frames (0: in sync); in sync = share of clips within ±1 frame; means "
        f"over clips. Rows: the clip's own frames and sound (real video); the photo (the clip's first frame) "
        f"held still under the sound; and every frame drawn by {generator or 'the generator'} from the landmarks "
        f"each stage-1 model predicts from the sound."
    )


REAL_FACE_CAPTION = (
    "Real-face metrics on the same frames, the photo being the clip's first frame: mouth-opening corr. = per "
    "clip, Pearson correlation of the mouth opening (inner-lip gap / mouth width) of the landmarks re-detected "
    "on the generated frames with that of the real frames' landmarks (detected by dlib when the data was "
    "prepared), mean over clips; a clip whose real mouth does not move is skipped, one whose generated mouth "
    "does not move counts 0 (so the photo held still scores 0); upper-face PSNR = of the eyes–nose box of the "
    "photo's landmarks against the photo, per frame capped at 100 dB; sharpness ratio = variance of the "
    "Laplacian of the face box, generated over photo (1: as sharp as the photo); face found = share of the "
    "generated frames in which dlib re-detects a face. Clip and frame counts are in "
    f"evaluation.json. {TRIVIAL}: the baseline *is* the photo, so its upper-face PSNR (the cap) and sharpness "
    "ratio (1) are perfect by construction, not a score to beat; they are not ranked."
)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
