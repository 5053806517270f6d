"""tracekd: trace-based knowledge distillation with verifiable traces (arXiv 2505.13792)."""

__version__ = "0.1.0"
