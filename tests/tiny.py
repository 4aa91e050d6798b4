"""Test-side name for the tiny random models of `frozen.testing`."""

from frozen.testing import ARCHS, TINY_VISION, make_tiny_lm_dir, make_tiny_tokenizer  # noqa: F401
