"""The loss contract: every configured term reads only what its module provides.

A LossTerm declares the `batch_fields` and `output_fields` it reads; a LightningModule declares
what it loads (`data_fields`, the fields it asks the DataModule for) and what it produces
(`output_fields`). Both modules check the one against the other when they are built, so a term
asking for something that never comes fails at once, in one line, instead of with a KeyError
mid-epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from losses.base import LossTerm
from losses.registry import term_label
from talkface.errors import TalkfaceError


def check_loss_contract(
    terms: Mapping[str, LossTerm],
    owner: str,
    batch_fields: Iterable[str],
    output_fields: Iterable[str],
    batch_verbs: tuple[str, str] = ("load", "loads"),
) -> None:
    """Raise a one-line TalkfaceError for the first term that reads a field `owner` lacks.

    Args:
        terms: the configured terms by their config name (a LossComposer's `terms`).
        owner: who provides the fields, as the message names it (e.g. "LandmarkModule").
        batch_fields: the fields of the batch the terms are given.
        output_fields: the model outputs the terms are given.
        batch_verbs: how the message says the owner provides the batch, as (infinitive, "it ..."
            form): ("load", "loads") when the terms see the batch as loaded, or e.g.
            ("give its loss terms", "gives them") when the module derives the terms' batch.
    """
    batch, outputs = tuple(batch_fields), tuple(output_fields)
    for name, term in terms.items():
        for field in term.batch_fields:
            if field not in batch:
                raise TalkfaceError(
                    f"{term_label(name, term)} reads batch field {field!r}, which {owner} does not {batch_verbs[0]} "
                    f"(it {batch_verbs[1]}: {', '.join(batch) or 'nothing'})"
                )
        for field in term.output_fields:
            if field not in outputs:
                raise TalkfaceError(
                    f"{term_label(name, term)} reads output {field!r}, which {owner} does not produce "
                    f"(it produces: {', '.join(outputs) or 'nothing'})"
                )
