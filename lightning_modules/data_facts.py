"""Keep the data facts a model cannot work without inside its checkpoints.

`talkface generate` gets only two checkpoint files: the audio feature settings, crop size and
vocabulary of the data they were trained on must travel inside them, not in a dataset folder
that the user may not have.
"""

from __future__ import annotations

import lightning as L

DATA_FACTS_KEY = "talkface_data"


def store_data_facts(module: L.LightningModule, checkpoint: dict) -> None:
    datamodule = getattr(module.trainer, "datamodule", None) if module._trainer is not None else None
    facts = getattr(datamodule, "inference_facts", None)
    if callable(facts):
        checkpoint[DATA_FACTS_KEY] = facts()
