"""A WandbLogger that is offline unless this machine is logged in to W&B."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger


def wandb_logged_in() -> bool:
    """True when an API key is available (WANDB_API_KEY or `wandb login`'s netrc entry); no network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        hosts = netrc.netrc(str(path)).hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


class TalkfaceWandbLogger(WandbLogger):
    def __init__(
        self, project: str = "talkface", offline: bool | None = None, save_dir: str = "runs", **kwargs
    ) -> None:
        """`offline=None` (default): offline unless logged in. Offline runs sync later with `wandb sync`."""
        if offline is None:
            offline = not wandb_logged_in()
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(project=project, offline=offline, save_dir=save_dir, **kwargs)
