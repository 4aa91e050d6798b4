"""The data pipeline: image-caption shards in the img2dataset webdataset layout -> batches.

    skips     the kinds of bad samples, per-worker counting with rate-limited logs, run tally
    decode    one raw sample -> (preprocessed image, caption) or SampleSkipped
    shards    shard specs, opening URLs, reading tars, splitting shards among ranks and workers
    packing   several image-caption pairs per training sequence
    stream    CaptionStream, the IterableDataset that puts these together
    documents interleaved image-text documents (MMC4 layout) -> training sequences
    mixing    DocumentStream, and MixedStream: pair and document batches in a fixed ratio
    document_writer / obelics   writing document shards; OBELICS parquet -> document shards

webdataset is imported only when shards are read; nothing here imports Lightning.
"""

from .decode import Pair, decode_pair
from .packing import Packer
from .shards import expand_shards
from .skips import SKIP_KINDS, DataError, SampleSkipped, SkipCounter, SkipTally
from .stream import CaptionStream, TrainBatch

__all__ = ["SKIP_KINDS", "CaptionStream", "DataError", "Packer", "Pair", "SampleSkipped",
           "SkipCounter", "SkipTally", "TrainBatch", "decode_pair", "expand_shards"]
