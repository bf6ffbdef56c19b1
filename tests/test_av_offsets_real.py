"""The corpus clips that configs/data/corpus_av_offsets.csv says are out of step, checked by a model
other than the sync expert that measured them.

The released stage 1 predicts mouth openings from the sound alone; it never saw the test people.
Its predictions match the real mouth best at the lag the recording carries: per test clip of
`speakers/`, the lag (in frames, positive: sound late) that maximises the mean per-window
correlation of predicted and real mouth opening. A model resolves this to about a frame, and only
where the correlation has a peak: a clip counts when its best lag beats every lag two or more
frames away from it by 0.05 or more. (Until 2026-12-01 the test asked the best lag to beat the
mean over all lags; the three-seed stage 1 then "found" -3 on katiehill's plateau, 0.279 against
0.23-0.26 from -4 to +2 and 0.09-0.18 at +3 and +4, which is no peak.) Of the counted clips,
those the table lists come out late (lag >= 1) and, once prepared with --av-offsets, within ±1;
the others come out within ±2 either way, unchanged by the table.

Measured: the mel-only stage 1 (an earlier release) found +3 on all three listed clips and ±1 on
the rest. The phone-reading one (released, with the mouth rest) finds +3 and +3 on PC-AVS 517600055
and Kristi Noem (-1 and 0 once corrected), and no peak on katiehill as recorded (where the expert
finds +2): its mean correlation stays within 0.22-0.25 from -4 to +2 frames, so the best lag there
flips between -3 and +1 on a difference of 0.003; corrected, it peaks at -1. The other clips: 0
to +2, the same both ways. The three-seed stage 1 (released 2026-12-01): +3 and +3 (-1 and 0
once corrected), katiehill unresolved, the other clips -1 to +1. The three-seed stage 1 that reads
the phones of frames t .. t + 4 (released 2026-12-02): +3 and +3 (-1 and 0 once corrected), the
other clips -1 to +1, and on katiehill as recorded a slope, not a peak: 0.288 / 0.274 / 0.231 /
0.195 / 0.199 / 0.225 / 0.232 / 0.180 / 0.077 from -4 to +4 (a second bump at +2, where the expert
finds the lag). Its best, -4, is the end of the searched range and beats the lags two or more away
by 0.056, so a best lag at either end of the range no longer counts as a peak.
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
PEAK = 0.05  # how far the best lag's correlation must rise above the mean over all lags


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
    lags = {}
    for clip, by in scores.items():
        means = {lag: sum(by[lag]) / max(len(by[lag]), 1) for lag in LAGS}
        best = max(LAGS, key=means.get)
        # A lag the model resolves: it beats every lag two or more frames away by PEAK (a flat
        # plateau over many lags is no peak, however far it stands above the mean of all lags).
        # A best lag at either end of the range is no peak either: the rise may go on beyond it.
        rivals = [means[lag] for lag in LAGS if abs(lag - best) >= 2]
        if min(LAGS) < best < max(LAGS) and means[best] - max(rivals) >= PEAK:
            lags[clip] = best
    return lags


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
    print({clip: lag for clip, lag in sorted(as_recorded.items())})
    late = [clip for clip in listed if clip in as_recorded]
    assert len(as_recorded) >= 7 and len(late) >= 2, as_recorded  # most clips, and 2 of the 3 listed, resolved
    for clip, lag in as_recorded.items():
        assert (1 <= lag <= 4) if clip in listed else abs(lag) <= 2, f"{clip}: best lag {lag:+d}"
    corrected = best_lags(prepare(tmp_path / "in_step", TABLE))
    print({clip: lag for clip, lag in sorted(corrected.items())})
    assert all(abs(corrected[clip]) <= 1 for clip in late), corrected
    assert all(corrected[clip] == lag for clip, lag in as_recorded.items() if clip not in listed), corrected
