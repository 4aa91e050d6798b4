"""frozen: multimodal few-shot learning with frozen language models.

A trainable vision encoder turns each image into a few prefix embeddings for a frozen causal
LM (Tsimpoukelli et al., 2021). The same API does text-only generation exactly as the bare LM.

    from frozen import FrozenConfig, FrozenModel
    model = FrozenModel(FrozenConfig(lm="path/or/hub-id", vision="ViT-B-32"))
    model.generate([[image, "A photo of"]])

Lightning, webdataset and evaluation code are imported only where they are used.
"""

from .config import FrozenConfig
from .images import ImageError, ImageTransform, load_image
from .model import FrozenModel, FrozenOutput
from .processor import Processor
from .prompts import PromptBatch, PromptError, Target
from .sampling import SamplingOptions

__all__ = ["FrozenConfig", "FrozenModel", "FrozenOutput", "ImageError", "ImageTransform",
           "Processor", "PromptBatch", "PromptError", "SamplingOptions", "Target", "load_image"]
__version__ = "0.1.0"
