"""Metrics: caption scores (pycocoevalcap), VQA accuracy, exact match; all reported x 100."""
