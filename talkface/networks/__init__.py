"""Plain `nn.Module` networks, apart from the LightningModules that train them."""

# Stage 2: landmarks + identity frame -> frames.
from talkface.networks.landmark_images import LandmarkRenderer
from talkface.networks.patch_discriminator import PatchDiscriminator, TemporalPatchDiscriminator
from talkface.networks.unet_generator import GeneratorOutput, UNetGenerator

__all__ = [
    "GeneratorOutput",
    "LandmarkRenderer",
    "PatchDiscriminator",
    "TemporalPatchDiscriminator",
    "UNetGenerator",
]
