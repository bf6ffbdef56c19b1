"""The validation folds of speakers/ (configs/data/validation/): held-out training people for
choosing stage-1 settings, so that no choice is made on the test people."""

from __future__ import annotations

from pathlib import Path

from talkface.prepare.sources import IdentityTable

FOLDS = sorted((Path(__file__).parents[1] / "configs/data/validation").glob("speakers_fold_*.csv"))


def people(table: IdentityTable, split: str) -> set[str]:
    return {row.identity for row in table.rows if row.split == split}


def test_the_folds_hold_out_disjoint_training_people_and_keep_the_test_people():
    tables = [IdentityTable.read(path) for path in FOLDS]
    assert len(tables) == 2
    a, b = tables
    assert people(a, "test") == people(b, "test") and len(people(a, "test")) == 8
    assert len(people(a, "val")) == len(people(b, "val")) == 7
    assert not people(a, "val") & people(b, "val")  # each training person is validated at most once
    for table in tables:
        assert not people(table, "val") & people(table, "test")
        assert not people(table, "val") & people(table, "train")
    files = [{row.pattern for row in table.rows} for table in tables]
    assert files[0] == files[1] and len(files[0]) == 39  # every clip of speakers/, in both folds
