"""The run layer: the only code that wires config -> data -> model -> method -> trainer -> evaluation.

One module per kind of run (``train``, ``pretrain``, ``finetune``, ``distill``, ``evaluate``,
``cv``, ``ablation``) and the development loop (the ``devloop`` package: variants, scoring,
operating points, the figure, tables, the grid); what they share (``folder``, ``wiring``,
``fit``, ``grid``); and the ``multimix`` command (``cli`` and ``commands/``). Nothing outside
this package imports it.
"""
