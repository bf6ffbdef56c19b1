"""`talkface fit | validate | test | predict`: the Lightning CLI for both stages.

One LightningCLI subclass: the config's `model.class_path` picks the stage (LandmarkModule or
FaceGenModule), `data` is always the shared LRWDataModule, and values both sides need (the
vocabulary size) are linked from the data instead of being written twice. Configs are parsed in
omegaconf mode, so `${...}` interpolation works inside a file.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import warnings
from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from datamodules import LRWDataModule
from talkface.checks import check_number
from talkface.errors import TalkfaceError
from talkface.training_args import rewrite_arguments

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class SaveConfigEverywhere(SaveConfigCallback):
    """Saves the resolved config beside the run (config.yaml) and inside every checkpoint."""

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        checkpoint["talkface_config"] = self.parser.dump(self.config, skip_none=False)


class TalkfaceCLI(LightningCLI):
    def before_instantiate_classes(self) -> None:
        """Check what can be checked before Lightning starts (one line, no Lightning output), and
        link data facts into the model: a model that takes `num_words` gets the vocabulary size
        of the prepared data (preparing it first when the config says how), so the number is
        never written twice. Models without the argument are left alone."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        _check_trainer_numbers(config.trainer)
        model_class = _import_class(config.model.class_path)
        takes_vocabulary = "num_words" in inspect.signature(model_class).parameters
        if not takes_vocabulary and self.subcommand != "fit":
            return
        data = LRWDataModule(**config.data.as_dict())
        data.ensure_prepared()
        if self.subcommand == "fit":
            data.check_enough_training_samples(_expected_world_size(config.trainer))
        if takes_vocabulary:
            config.model.init_args.num_words = max(data.num_words, 1)

    # Checked before Lightning starts its processes, so the mistake is reported once, plainly.
    def before_fit(self) -> None:
        self.datamodule.check_batch_size(self.trainer.world_size)
        self._resolve_checkpoint_alias()
        self._read_checkpoint_safely()

    def _resolve_checkpoint_alias(self) -> None:
        """`--ckpt_path last` / `best` across runs: every run gets a new log version folder, so
        Lightning alone would only look in the new (empty) one. Here `last` is the newest
        last.ckpt under the run's root, and `best` the best checkpoint that one recorded."""
        kwargs = self.config_init[self.subcommand]
        alias = kwargs.get("ckpt_path")
        if alias not in ("last", "best"):
            return
        root = Path(self.trainer.default_root_dir)
        candidates = sorted(root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            if alias == "last" and self.subcommand == "fit":
                print(f"talkface fit: no last.ckpt under {root} yet; starting a new run", file=sys.stderr)
                kwargs["ckpt_path"] = None
                return
            raise TalkfaceError(f"--ckpt_path {alias}: no checkpoint under {root}; train first or give a path")
        path = candidates[-1]
        if alias == "best":
            path = best_recorded_in(path)
        print(f"talkface {self.subcommand}: using checkpoint {path}", file=sys.stderr)
        kwargs["ckpt_path"] = str(path)

    def _parse_ckpt_path(self) -> None:
        """Lightning's CLI reads a --ckpt_path file here, while parsing, to rebuild the model from its
        hyper-parameters (with weights_only=True). Check it first, so that a refused or unreadable
        file is one line, and a class it names is never imported on its say-so."""
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path and str(path) not in ("last", "best") and not Path(str(path)).is_file():
            raise TalkfaceError(
                f"--ckpt_path {path}: no such checkpoint file; give a .ckpt that talkface fit wrote, or last / best"
            )
        if path and Path(str(path)).is_file():
            from talkface.generation.checkpoints import check_resume_checkpoint

            checkpoint = check_resume_checkpoint(path, f"--ckpt_path {path}")
            _check_same_stage(checkpoint, self.config[subcommand].model.class_path, path)
            self._checked_checkpoint = str(path)
        super()._parse_ckpt_path()

    def _read_checkpoint_safely(self) -> None:
        """Lightning reads --ckpt_path with torch.load's default weights_only, which torch 2.6+ sets
        to True but the TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD variable turns off: ask for True explicitly
        (unless the user wrote --weights_only false), and read the file here first, the same safe
        way, so that a refused or unreadable one is one line instead of a traceback from Lightning."""
        kwargs = self.config_init[self.subcommand]
        path = kwargs.get("ckpt_path")
        if not path or kwargs.get("weights_only") is False:
            return
        if "weights_only" in kwargs:  # Trainer.fit/validate/test/predict take it (Lightning 2.6 here)
            kwargs["weights_only"] = True
        # `last` / `best` become a file only in _resolve_checkpoint_alias, after parsing
        if Path(str(path)).is_file() and str(path) != getattr(self, "_checked_checkpoint", None):
            from talkface.generation.checkpoints import check_resume_checkpoint

            check_resume_checkpoint(path, f"--ckpt_path {path}")

    before_validate = before_test = before_predict = before_fit


def _check_trainer_numbers(trainer) -> None:
    """Lightning accepts -1 as "no limit" and some negative values it then ignores silently."""
    for key, minimum in (("max_epochs", -1), ("min_epochs", 0), ("max_steps", -1), ("min_steps", 0)):
        value = trainer.get(key)
        if value is not None:
            check_number(f"trainer.{key}" + (" (-1: no limit)" if minimum < 0 else ""), value, minimum, whole=True)


def _expected_world_size(trainer) -> int:
    """Processes the trainer will start, from its settings (the DataModule checks the real
    number again once Lightning knows it)."""
    devices, nodes = trainer.get("devices", "auto"), trainer.get("num_nodes") or 1
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, int) and devices > 0:
        count = devices
    elif isinstance(devices, str) and devices.isdigit() and int(devices) > 0:
        count = int(devices)
    else:  # "auto" or -1: every GPU when there are some, else one CPU process
        import torch

        wants_gpu = str(trainer.get("accelerator", "auto")) in ("auto", "gpu", "cuda")
        count = torch.cuda.device_count() if wants_gpu and torch.cuda.is_available() else 1
    return max(count, 1) * int(nodes)


def _check_same_stage(checkpoint: dict, class_path: str, path) -> None:
    """A checkpoint of the other stage: one line now, not a confusing mismatch after re-parsing."""
    from talkface.generation.checkpoints import STAGES, stage_of

    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise TalkfaceError(f"--ckpt_path {path}: not a checkpoint that talkface fit wrote")
    found = stage_of(checkpoint)
    wanted = next((cls for cls in STAGES if class_path.endswith(cls.__name__)), None)
    if found is not None and wanted is not None and found is not wanted:
        raise TalkfaceError(
            f"--ckpt_path {path}: this is a {STAGES[found][0]} checkpoint, but the config is for a {STAGES[wanted][0]} "
            f"model ({wanted.__name__}); give a checkpoint of the same stage"
        )


def _import_class(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def best_recorded_in(last: Path) -> Path:
    from talkface.generation.checkpoints import safe_torch_load

    state = safe_torch_load(last)  # weights_only=True: a refused file is a TalkfaceError
    if not isinstance(state, dict):
        raise TalkfaceError(f"{last}: not a Lightning checkpoint")
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and value.get("monitor") and value.get("best_model_path"):
            best = Path(value["best_model_path"])
            if best.exists():
                return best
    raise TalkfaceError(f"{last} records no best checkpoint (no monitored metric?); give --ckpt_path PATH")


def run_lightning(argv: list[str]) -> int:
    """Run one Lightning subcommand; user errors become one line and exit code 2."""
    # The arguments are rewritten (configs composed), so Lightning is handed `args` while
    # sys.argv keeps the user's words: DDP ranks re-run sys.argv and rewrite it themselves.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    # The seed is in the saved config; its log line would precede every one-line error.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    try:
        args = rewrite_arguments(argv)
        TalkfaceCLI(
            LightningModule,
            LRWDataModule,
            subclass_mode_model=True,
            save_config_callback=SaveConfigEverywhere,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
            args=args,
            auto_configure_optimizers=False,
        )
    except Exception as error:
        user_error = _find_user_error(error)
        if user_error is not None:
            return _fail(argv[0], str(user_error))
        # Lightning's name for a user's mistake (an accelerator this machine lacks, a bad flag).
        if isinstance(error, MisconfigurationException):
            return _fail(argv[0], _one_line(str(error)) + _MISCONFIGURATION_HINT)
        # jsonargparse reports config mistakes (unknown key, wrong type) as ArgumentError.
        if type(error).__name__ in ("ArgumentError", "NSKeyError") or "jsonargparse" in type(error).__module__:
            return _fail(argv[0], _one_line(str(error)))
        raise
    _close_process_group()
    return 0


def _close_process_group() -> None:
    """Lightning leaves the DDP process group open, and a gloo group still open when the
    interpreter shuts down can abort the process (SIGABRT, "terminate called without an active
    exception") after all the work is done. Closed only after a clean run: then every rank has
    passed its last collective, whereas after an error another rank may still wait in one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


_MISCONFIGURATION_HINT = " (check the trainer settings; on a machine without a GPU use --trainer.accelerator cpu)"


def _find_user_error(error: BaseException | None) -> TalkfaceError | None:
    """A TalkfaceError raised anywhere below (jsonargparse and Lightning wrap exceptions)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, TalkfaceError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _one_line(message: str) -> str:
    lines = [line.strip(" -") for line in message.strip().splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))[:600]


def _fail(command: str, message: str) -> int:
    print(f"talkface {command}: error: {message}", file=sys.stderr)
    return 2
