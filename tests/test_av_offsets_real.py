"""The corpus clips that configs/data/corpus_av_offsets.csv says are out of step, checked by a model
other than the sync expert that measured them.

The released stage 1 predicts mouth openings from the sound alone; it never saw the test people.
Its predictions match the real mouth best at the lag the recording carries: per test clip of
`speakers/`, the lag (in frames, positive: sound late) that maximises the mean per-window
correlation of predicted and real mouth opening. A model resolves this to about a frame, so: the
clips the table lists come out late (lag >= 1) and, once prepared with --av-offsets, within ±1;
the others come out within ±2 either way, unchanged by the table.

Measured: the mel-only stage 1 (the previous release) found +3 on all three listed clips and ±1
on the rest; the phone-reading one (released now) finds +1, +3, +3 on the listed clips (katiehill,
where the expert finds +2, is the +1), -1, -1, 0 after the correction, and +2 on
feifeili_clip2_short both ways (the expert: +1).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch

from tests.helpers.real_data import CORPUS, needs_corpus

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "configs" / "data" / "corpus_av_offsets.csv"
LAGS = range(-4, 5)


def best_lags(prepared: Path) -> dict[str, int]:
    from datamodules import LRWDataModule
    from lightning_modules import LandmarkModule
    from talkface.generation.checkpoints import load_stage
    from talkface.metrics.mouth_opening import mouth_opening
    from talkface.weights import LANDMARK

    model, _ = load_stage(LANDMARK, LandmarkModule)
    fields = ["id", "audio_windows", "identity_landmarks", "landmarks"]
    fields += [name for name in ("phone_windows",) if name in model.data_fields]  # a stage 1 that reads phones
    data = LRWDataModule(str(prepared), batch_size=8, num_workers=0, fields=fields)
    data.setup("test")
    scores: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with torch.no_grad():
        for batch in data.test_dataloader():
            predicted = mouth_opening(
                model(batch["audio_windows"], batch["identity_landmarks"], batch.get("phone_windows"))
            )
            real = mouth_opening(batch["landmarks"])
            frames = real.shape[1]
            for i, sample_id in enumerate(batch["id"]):
                for lag in LAGS:  # the real mouth at t against the prediction from the sound at t + lag
                    p = predicted[i, max(lag, 0) : frames + min(lag, 0)]
                    r = real[i, max(-lag, 0) : frames - max(lag, 0)]
                    if r.std() > 1e-3 and p.std() > 1e-6:
                        scores[sample_id.split("#")[0]][lag].append(float(torch.corrcoef(torch.stack([p, r]))[0, 1]))
    return {clip: max(LAGS, key=lambda lag: sum(by[lag]) / max(len(by[lag]), 1)) for clip, by in scores.items()}


@pytest.mark.slow
@needs_corpus()
def test_stage_one_finds_the_listed_offsets_and_none_once_they_are_corrected(tmp_path):
    from talkface.prepare import PrepareSettings, prepare_dataset
    from talkface.prepare.av_offsets import AvOffsetTable

    listed = dict(AvOffsetTable.read(TABLE).rows)

    def prepare(out: Path, offsets: Path | None) -> Path:
        settings = PrepareSettings(
            src=CORPUS / "speakers",
            out=out,
            layout="folder",
            identities=CORPUS / "identities.csv",
            av_offsets=offsets,
            splits=("test",),
            progress=False,
        )
        prepare_dataset(settings)
        return out

    as_recorded = best_lags(prepare(tmp_path / "as_recorded", None))
    assert len(as_recorded) >= 8 and set(listed) <= set(as_recorded)
    print({clip: lag for clip, lag in sorted(as_recorded.items())})
    for clip, lag in as_recorded.items():
        assert (1 <= lag <= 4) if clip in listed else abs(lag) <= 2, f"{clip}: best lag {lag:+d}"
    corrected = best_lags(prepare(tmp_path / "in_step", TABLE))
    print({clip: lag for clip, lag in sorted(corrected.items())})
    assert all(abs(corrected[clip]) <= 1 for clip in listed), corrected
    assert all(corrected[clip] == lag for clip, lag in as_recorded.items() if clip not in listed), corrected
