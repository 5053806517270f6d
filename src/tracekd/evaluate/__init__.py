"""Evaluation: per-sample answer and trace scores (``score``), statistics (``stats``), and the
paper's released outputs re-scored (``reference``)."""
