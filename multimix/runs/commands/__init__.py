"""The ``multimix`` subcommands, one module each (``main(argv) -> exit status``); ``scripts/*.py``
and ``python -m multimix`` call the same functions."""
