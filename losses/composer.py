"""LossComposer: the weighted sum of a module's loss terms, and every term for logging."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from losses.contract import check_loss_contract
from losses.registry import build_loss


class LossComposer(nn.Module):
    def __init__(self, terms: dict[str, Any]) -> None:
        """`terms`: {log name: LossTerm | name | {class_path, init_args}}."""
        super().__init__()
        self.terms = nn.ModuleDict({name: build_loss(spec, name) for name, spec in terms.items()})

    def check_contract(
        self,
        owner: str,
        batch_fields: Iterable[str],
        output_fields: Iterable[str],
        batch_verbs: tuple[str, str] = ("load", "loads"),
    ) -> None:
        """Every term reads only `batch_fields` and `output_fields` (see losses.contract)."""
        check_loss_contract(self.terms, owner, batch_fields, output_fields, batch_verbs)

    def attach(self, module: nn.Module) -> None:
        for term in self.terms.values():
            term.attach(module)

    @property
    def batch_fields(self) -> set[str]:
        return {field for term in self.terms.values() for field in term.batch_fields}

    @property
    def output_fields(self) -> set[str]:
        return {field for term in self.terms.values() for field in term.output_fields}

    def forward(self, outputs: dict, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted total, {name: unweighted value}); inactive terms are skipped, not computed."""
        total = None
        values: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            if not term.active(step):
                if term.weight != 0.0 and any(p.requires_grad for p in term.parameters()):
                    # A delayed term with parameters of its own still joins the graph (at weight 0):
                    # DDP requires every trainable parameter to take part in every backward pass.
                    value = term(outputs, batch)
                    total = value * 0.0 if total is None else total + value * 0.0
                continue
            value = term(outputs, batch)
            values[name] = value.detach()
            total = term.weight * value if total is None else total + term.weight * value
        if total is None:
            total = torch.zeros((), device=_device(outputs))
        return total, values


def _device(outputs: dict) -> torch.device:
    for value in outputs.values():
        if isinstance(value, torch.Tensor):
            return value.device
    return torch.device("cpu")
