"""The run layer: the only code that wires config -> data -> model -> method -> trainer -> evaluation.

One module per kind of run (``train``, ``pretrain``, ``finetune``, ``distill``, ``evaluate``,
``ablation``, ``devloop``), what they share (``common``), and the ``multimix`` command
(``cli`` and ``commands/``). Nothing outside this package imports it.
"""
