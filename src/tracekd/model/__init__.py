"""The models: the chat template (``chat``), training (``train``), generation engines
(``generate``, and the GPU seam ``gpu``), inference (``predict``) and the demo's tiny model
(``tiny``)."""
