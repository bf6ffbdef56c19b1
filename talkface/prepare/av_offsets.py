"""`--av-offsets FILE.csv`: recordings whose sound is not in step with the picture, and by how much.

Real clips can carry an audio-video offset from their recording or editing (a few of the corpus's
broadcast clips are 3 frames, 120 ms, late). Trained on, such a clip teaches stage 1 to move the
lips before or after the sound; tested on, it scores a model that is in sync as out of sync. The
usual cure (the LRS2/LRS3 and VoxCeleb pipelines do it with SyncNet) is to measure each clip's
offset once (`talkface sync VIDEO`) and shift its audio by that much when the data is prepared.

Columns `file,offset_frames`: `file` is matched as in `--identities` (a path or glob relative to
the CSV's folder or to --src); `offset_frames` is what `talkface sync` prints: positive when the
sound comes late, so the audio is advanced by that many video frames. Clips not named keep
their sound as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.prepare.sources import Source, first_match, read_table, source_keys

COLUMNS = ("file", "offset_frames")
MAX_OFFSET = 50  # frames (2 s at 25 fps): more is not an offset but a different recording


@dataclass(frozen=True)
class AvOffsetTable:
    path: Path
    rows: tuple[tuple[str, int], ...]  # (file pattern, offset in frames)

    @classmethod
    def read(cls, path: Path) -> AvOffsetTable:
        path = Path(path)
        where = f"--av-offsets {path}"
        rows = []
        for line, values in read_table(path, where, COLUMNS, "an offset table"):
            file, offset = values["file"], values["offset_frames"]
            try:
                frames = int(offset)
            except ValueError:
                raise TalkfaceError(
                    f"{where}, line {line}: offset_frames must be a whole number, got {offset!r}"
                ) from None
            if not file or abs(frames) > MAX_OFFSET:
                raise TalkfaceError(f"{where}, line {line}: give a file and an offset within ±{MAX_OFFSET} frames")
            file = file.replace("\\", "/")
            rows.append((file[2:] if file.startswith("./") else file, frames))
        return cls(path, tuple(rows))

    def offset(self, keys: list[str]) -> int:
        """The offset of the first row naming one of `keys` (an exact path wins over a glob); 0 if none."""
        index = self._row(keys)
        return 0 if index is None else self.rows[index][1]

    def assign(self, sources: list[Source], root: Path) -> tuple[list[Source], list[str]]:
        """The sources with their offsets, and the table's files that name none of them (a typo,
        or a row meant for another source folder)."""
        rows = [self._row(source_keys(source, root, self.path)) for source in sources]
        assigned = [
            replace(source, audio_offset=0 if index is None else self.rows[index][1])
            for source, index in zip(sources, rows, strict=True)
        ]
        return assigned, [pattern for index, (pattern, _) in enumerate(self.rows) if index not in rows]

    def _row(self, keys: list[str]) -> int | None:
        return first_match([pattern for pattern, _ in self.rows], keys)
