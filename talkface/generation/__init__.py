"""Generation: one photo + one speech recording → a talking-face video (`generate`)."""

from talkface.generation.pipeline import GenerationResult, generate

__all__ = ["GenerationResult", "generate"]
