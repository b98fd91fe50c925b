"""The engine's numbers that torch-free code uses too, named once here (no torch, no Django).

The reproduce script (workers/notebook.py) and the token-length reader (workers/token_lengths.py)
run in the web process, which never imports torch; the engine reads the same names from here.
"""

MAX_TOKENS = 128  # every shipped example is far shorter; a guard for uploaded text
EVAL_BATCH = 64  # validation examples per forward pass
