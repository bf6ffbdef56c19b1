"""Several prepared datasets in one recipe (mixing weights, one vocabulary) and splits by identity."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from litdata import StreamingDataset

from datamodules import LRWDataModule
from talkface.errors import TalkfaceError
from talkface.prepare import PrepareSettings, prepare_dataset
from talkface.prepare.sources import IdentityTable, find_sources
from talkface.recipes import load_composed
from tests.helpers.cli import cpu_overrides, data_overrides, run_cli, small_model
from tests.helpers.media_factory import lrw_tree
from tests.helpers.real_data import CORPUS, REAL_DATA, needs_corpus, needs_real_data

FIELDS = ["id", "word", "landmarks"]


@pytest.fixture(scope="module")
def two_prepared(tmp_path_factory) -> tuple[Path, Path]:
    """Two small LRW-layout datasets of face clips with different words (BLACK in both
    vocabularies; in training the first has ABOUT and BLACK, the second only CHAIR)."""
    folders = []
    for name, words in [
        ("first", {"ABOUT": {"train": 4, "val": 1}, "BLACK": {"train": 4}}),
        ("second", {"BLACK": {"val": 1}, "CHAIR": {"train": 6}}),
    ]:
        raw = lrw_tree(tmp_path_factory.mktemp(f"{name}_raw"), words)
        out = tmp_path_factory.mktemp(f"{name}_prepared")
        prepare_dataset(PrepareSettings(src=raw, out=out, workers=1, progress=False))
        folders.append(out)
    return folders[0], folders[1]


def mixed(first: Path, second: Path, weight: float, other: float, **kwargs) -> LRWDataModule:
    options = dict(batch_size=4, num_workers=0, fields=FIELDS) | kwargs
    return LRWDataModule(str(first), weight=weight, mix=[{"data_dir": str(second), "weight": other}], **options)


def test_training_draws_from_both_datasets_by_weight_with_one_vocabulary(two_prepared):
    first, second = two_prepared
    data = mixed(first, second, 0.25, 0.75)
    assert data.vocabulary == ["ABOUT", "BLACK", "CHAIR"] and data.num_words == 3
    assert data.inference_facts()["vocabulary"] == ["ABOUT", "BLACK", "CHAIR"]
    data.setup("fit")
    assert data.split_sizes == {"train": 14, "val": 2}
    loader = data.train_dataloader()
    counts, labels = Counter(), {}
    batches = 0
    for _ in range(40):  # an epoch ends when one dataset runs out: many short epochs
        for batch in loader:
            batches += 1
            for item_id, word in zip(batch["id"], batch["word"].tolist(), strict=True):
                counts["second" if item_id.startswith("CHAIR/") else "first"] += 1
                labels[item_id.split("/")[0]] = word
    share = counts["second"] / sum(counts.values())
    assert batches > 40 and 0.65 < share < 0.85, (counts, share)
    # Each dataset's labels point at its own words in the merged vocabulary (CHAIR: 1 there, 2 here).
    assert labels == {"ABOUT": 0, "BLACK": 1, "CHAIR": 2}
    # Validation reads every sample of each dataset's val split once (BLACK: 0 in the second, 1 here).
    val = {i: w for batch in data.val_dataloader() for i, w in zip(batch["id"], batch["word"].tolist(), strict=True)}
    assert val == {"ABOUT/val/ABOUT_00001": 0, "BLACK/val/BLACK_00001": 1}


def test_data_dir_alone_is_unchanged(two_prepared):
    first, _ = two_prepared
    data = LRWDataModule(str(first), batch_size=4, num_workers=0, fields=FIELDS)
    data.setup("fit")
    assert type(data.datasets["train"]) is StreamingDataset and data.vocabulary == ["ABOUT", "BLACK"]
    assert len([i for batch in data.train_dataloader() for i in batch["id"]]) == 8
    assert [w for batch in data.val_dataloader() for w in batch["word"].tolist()] == [0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda meta: meta["features"].update(n_mels=40),
            "was prepared with other settings than .* \\(features \\{'n_mels': 80\\} vs \\{'n_mels': 40\\}\\)",
        ),
        (lambda meta: meta.update(crop_size=256), "crop_size 128 vs 256"),
    ],
    ids=["n-mels", "crop"],
)
def test_a_dataset_prepared_with_other_settings_is_one_line(two_prepared, tmp_path, edit, message):
    first, second = two_prepared
    other = tmp_path / "other"
    shutil.copytree(second, other)
    meta = json.loads((other / "meta.json").read_text())
    edit(meta)
    (other / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TalkfaceError, match=message) as error:
        mixed(first, other, 0.5, 0.5).setup("fit")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ([{"data_dir": "nowhere", "weight": 1}], "nowhere: not a prepared dataset"),
        ([{"data_dir": "{second}", "weight": 0}], "data.mix\\[0\\].weight must be a number above 0"),
        ([{"data_dir": "{second}", "wieght": 1}], "unknown key\\(s\\) wieght"),
        ([{"data_dir": "{first}"}], "already in the mixture"),
    ],
    ids=["unprepared", "weight-0", "typo", "twice"],
)
def test_a_wrong_mix_entry_is_one_line(two_prepared, mix, message):
    first, second = two_prepared
    mix = [{k: str(v).format(first=first, second=second) for k, v in entry.items()} for entry in mix]
    mix = [{k: (float(v) if k == "weight" else v) for k, v in entry.items()} for entry in mix]
    with pytest.raises(TalkfaceError, match=message):
        LRWDataModule(str(first), batch_size=4, num_workers=0, mix=mix).setup("fit")


# ---- splits by identity ---------------------------------------------------------------------


def write_identities(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "identity", "split"])
        writer.writerows(rows)
    return path


@needs_real_data()
def test_every_clip_of_an_identity_goes_to_its_split(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    for name in ("grid_bbaf2n.mpg", "grid_brbk7n.mpg", "grid_lbax4n.mpg"):
        os.symlink(REAL_DATA / "videos" / name, src / name)
    table = write_identities(
        tmp_path / "identities.csv",
        [("grid_bbaf2n.mpg", "anna", "test"), ("grid_b*.mpg", "ben", "train"), ("grid_lbax4n.mpg", "anna", "test")],
    )
    out = tmp_path / "out"
    # First split by clip name (all to val), then again by identity: the clips are not processed
    # again, and the val split that no clip goes to any more is removed (no stale copy to validate on).
    prepare_dataset(
        PrepareSettings(src=src, out=out, layout="folder", split_ratios=(0, 1, 0), workers=1, progress=False)
    )
    assert (out / "val").is_dir()
    report = prepare_dataset(
        PrepareSettings(src=src, out=out, layout="folder", identities=table, workers=1, progress=False)
    )
    assert report.skipped == [] and report.processed_now == 0 and not (out / "val").exists()
    assert report.samples == {"train": 2, "test": 4}  # two 29-frame windows a clip
    meta = json.loads((out / "meta.json").read_text())
    assert meta["splits"]["train"]["identities"] == {"ben": 2}
    assert meta["splits"]["test"]["identities"] == {"anna": 4}
    assert meta["identities"] == str(table)
    test_ids = {StreamingDataset(str(out / "test" / "light"))[i]["id"].split("#")[0] for i in range(4)}
    assert test_ids == {"grid_bbaf2n.mpg", "grid_lbax4n.mpg"}


def test_a_clip_the_table_does_not_name_is_one_line_naming_it(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (src / name).write_bytes(b"")  # only names are looked at
    table = IdentityTable.read(write_identities(tmp_path / "ids.csv", [("a.mp4", "anna", "train")]))
    with pytest.raises(TalkfaceError, match="names no identity for 2 clip\\(s\\) of .*: b.mp4, c.mp4; add a row"):
        find_sources(src, "folder", ("train", "val", "test"), (0.8, 0.1, 0.1), identities=table)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,person\na.mp4,anna\n", "not an identity table \\(no file, identity, split column"),
        ("file,identity,split\na.mp4,anna,dev\n", "line 2: split 'dev' is not one of train, val, test"),
        ("file,identity,split\na.mp4,anna,train\nb.mp4,anna,test\n", "identity 'anna' is in train and in test"),
        ("file,identity,split\n", "no rows"),
    ],
    ids=["columns", "split", "two-splits", "empty"],
)
def test_a_garbled_identity_table_is_one_line(tmp_path, text, message):
    path = tmp_path / "ids.csv"
    path.write_text(text)
    with pytest.raises(TalkfaceError, match=message):
        IdentityTable.read(path)


@needs_corpus()
def test_the_corpus_table_names_every_clip_with_audio_and_keeps_test_people_out_of_training():
    table = IdentityTable.read(CORPUS / "identities.csv")
    speakers = find_sources(CORPUS / "speakers", "folder", ("train", "val", "test"), (1, 0, 0), identities=table)
    grid = find_sources(CORPUS / "grid_s1", "grid", ("train", "val", "test"), (1, 0, 0), identities=table)
    assert len(speakers) == len([p for p in (CORPUS / "speakers").iterdir() if p.is_file()])
    assert {s.split for s in grid} == {"train"} and len(grid) == 1000
    splits = {}
    for source in speakers + grid:
        splits.setdefault(source.identity, set()).add(source.split)
    assert all(len(found) == 1 for found in splits.values()), splits
    test_people = {s.identity for s in speakers if s.split == "test"}
    assert {"feifei_li", "kristi_noem"} <= test_people
    assert not test_people & {s.identity for s in speakers if s.split == "train"}


def test_mixed_training_runs_through_the_cli_and_keeps_the_merged_vocabulary(two_prepared, tmp_path):
    first, second = two_prepared
    result = run_cli(
        [
            "fit",
            "-c",
            "configs/landmark/sample.yaml",
            *cpu_overrides(),
            *small_model("landmark"),
            *data_overrides(first, tmp_path),
            "--data.mix",
            f"[{{data_dir: {second}, weight: 0.5}}]",
            "--trainer.max_epochs",
            "2",
            "--trainer.check_val_every_n_epoch",
            "1",
        ],
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=False)
    assert checkpoint["talkface_data"]["vocabulary"] == ["ABOUT", "BLACK", "CHAIR"]
    assert checkpoint["hyper_parameters"]["num_words"] == 3


def test_the_corpus_recipe_names_both_datasets_with_their_weights():
    data = LRWDataModule(**load_composed("configs/data/corpus.yaml")["data"])
    assert data.data_dirs == [Path("data/corpus/speakers"), Path("data/corpus/grid_s1")]
    assert data.weights == [0.5, 0.5]
